"""Tasks ``image_captioning``, ``photo_captioning`` and ``audio_captioning``: the shared
captioning task (:mod:`tasks.captioning.task`), its plugins (:mod:`~tasks.captioning.image`,
:mod:`~tasks.captioning.photo`, :mod:`~tasks.captioning.audio`), the generators of the
generated data (``*_scenes``), the offline bases' recipes (``*_base``, on
:mod:`tasks.captioning.base`) and the readers of COCO, Flickr, TextCaps, Clotho, AudioCaps
and HF folder captions (:mod:`tasks.captioning.loaders`)."""

from tasks.captioning.audio import AudioCaptioningTask
from tasks.captioning.image import ImageCaptioningTask
from tasks.captioning.photo import PhotoCaptioningTask

__all__ = ["AudioCaptioningTask", "ImageCaptioningTask", "PhotoCaptioningTask"]
