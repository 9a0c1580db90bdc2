"""Style descriptors: one vector per image, so that style distances are Euclidean distances.

Two descriptors work offline: VGG16 Gram-matrix statistics (the classic texture/style signature of Gatys et al.)
and statistics of the encoder's latents (what the attacked model itself sees). A CLIP image embedding joins
behind the same interface (``stylecloak.evaluation.clip.clip_descriptor``, ``--descriptor clip:PATH``). Images
are resized to a common long side first, so that descriptors of images of different sizes are comparable, and
the descriptor is about style, not resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from .models.encoders import LatentEncoder
from .models.vgg import VGG16Features, imagenet_normalize

# Style lives in texture statistics; 256 px keeps brush-scale texture and costs a fraction of a second.
DESCRIPTOR_LONG_SIDE = 256
GRAM_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


@runtime_checkable
class StyleDescriptor(Protocol):
    """``describe`` maps a 1x3xHxW image in [0, 1] to a 1-D float vector; style distance is Euclidean."""

    name: str

    def describe(self, image: torch.Tensor) -> torch.Tensor: ...


def resize_long_side(image: torch.Tensor, long_side: int = DESCRIPTOR_LONG_SIDE) -> torch.Tensor:
    height, width = image.shape[-2:]
    scale = long_side / max(height, width)
    size = (max(8, round(height * scale)), max(8, round(width * scale)))
    return F.interpolate(image, size=size, mode="bilinear", antialias=scale < 1, align_corners=False)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """C x C feature correlations, normalised by the number of positions (as in Gatys et al.)."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (height * width)


@dataclass
class GramDescriptor:
    """VGG16 Gram matrices at four depths. Each layer's Gram is scaled by ``1/sqrt(C^2)`` and its square root
    is taken element-wise (signed), which evens out the layers' very different magnitudes."""

    vgg: VGG16Features
    layers: tuple[str, ...] = GRAM_LAYERS
    long_side: int = DESCRIPTOR_LONG_SIDE
    name: str = "gram"

    @torch.no_grad()
    def describe(self, image: torch.Tensor) -> torch.Tensor:
        features = self.vgg(imagenet_normalize(resize_long_side(image, self.long_side)), self.layers)
        parts = []
        for layer in self.layers:
            gram = gram_matrix(features[layer])[0]
            parts.append(gram.sign() * gram.abs().sqrt() / gram.shape[0])
        return torch.cat([p.flatten() for p in parts]).cpu()


@dataclass
class LatentStatsDescriptor:
    """Per-channel mean, standard deviation and mean absolute spatial gradient of the encoder's latents."""

    encoder: LatentEncoder
    long_side: int = DESCRIPTOR_LONG_SIDE
    name: str = "latent"

    @torch.no_grad()
    def describe(self, image: torch.Tensor) -> torch.Tensor:
        latents = self.encoder.encode(resize_long_side(image, self.long_side))[0]
        gradient = (latents[:, 1:, :] - latents[:, :-1, :]).abs().mean(dim=(1, 2)) + (
            latents[:, :, 1:] - latents[:, :, :-1]
        ).abs().mean(dim=(1, 2))
        return torch.cat([latents.mean(dim=(1, 2)), latents.std(dim=(1, 2)), gradient]).cpu()


def centroid(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack(list(vectors)).mean(dim=0)


def style_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm())
