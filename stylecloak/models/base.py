"""The encoder interface (the ``E`` of the method): what the optimiser, the metrics and every backend share.

The backends (stylecloak.models.encoders, .diffusers_encoders, .ensemble) implement it; nothing here knows them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LatentEncoder(nn.Module):
    """An image encoder of a latent diffusion model.

    ``encode`` takes RGB in [0, 1] (N x 3 x H x W, any H and W) and returns latents; it must be differentiable
    with respect to the image. ``decode`` (optional) shows what the model sees. ``stem_context_px`` is how much
    surrounding image a tile needs so that its central latents match a whole-image pass closely.
    """

    name: str = "encoder"
    latent_channels: int = 0
    downscale: int = 8
    # Pixels of context a stem tile needs so that its core matches a whole-image pass (its receptive radius).
    stem_context_px: int = 80

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def split(self) -> tuple[nn.Module, nn.Module]:
        """``(stem, head)`` with ``head(stem(x)) == encode(x)`` for x padded to a multiple of ``downscale``.

        The stem must be local (convolutions); the head runs at latent resolution and may be global. The
        default, an identity head, is right for encoders that are fully local.
        """
        return _Padded(self), nn.Identity()

    @property
    def can_decode(self) -> bool:
        return False

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"encoder {self.name!r} has no decoder")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encode(image)


class _Padded(nn.Module):
    def __init__(self, encoder: LatentEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode(image)


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad the bottom and right edges up to a multiple (differentiable, so gradients reach the border)."""
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
