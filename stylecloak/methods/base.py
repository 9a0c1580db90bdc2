"""The optimiser interface: one way of cloaking an image, so that stylecloak and the published peer methods run
side by side in one framework on the same encoder, images and metrics.

A method gets the original (1x3xHxW, 8-bit values in [0, 1]), the style target rendered for it (methods with a
fixed target of their own ignore it), the encoder to attack and the perceptual metric. It returns the saved
8-bit image and the target it pulled towards, so that ``target_progress`` is measured against each method's
own aim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from ..models.encoders import LatentEncoder


@dataclass
class MethodResult:
    cloaked: torch.Tensor  # 1x3xHxW, exact 8-bit levels
    target: torch.Tensor  # the image whose latent the method pulled towards, same shape
    steps: int


@runtime_checkable
class CloakMethod(Protocol):
    name: str
    description: str

    def cloak(
        self, original: torch.Tensor, style_target: torch.Tensor, encoder: LatentEncoder, perceptual: torch.nn.Module
    ) -> MethodResult: ...
