"""Tasks ``image_captioning`` and ``audio_captioning``: the shared captioning task
(:mod:`tasks.captioning.task`), its two plugins (:mod:`~tasks.captioning.image`,
:mod:`~tasks.captioning.audio`), the generators of their data (``*_scenes``), the offline
bases' recipes (``*_base``, on :mod:`tasks.captioning.base`) and the readers of COCO,
Flickr, TextCaps, Clotho and HF folder captions (:mod:`tasks.captioning.loaders`)."""

from tasks.captioning.audio import AudioCaptioningTask
from tasks.captioning.image import ImageCaptioningTask

__all__ = ["AudioCaptioningTask", "ImageCaptioningTask"]
