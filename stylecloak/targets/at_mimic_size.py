"""A target rendered at the size the mimic learns from, then enlarged back to the posted size.

Why: every built-in rendition draws its strokes at a fixed fraction of the image's long side (ink-hatching puts
150 lines across), so that it looks the same at any posted size. A mimic shrinks what it scrapes to its training
size first. At a quarter of a 512 px posting, 150 lines across fall under one pixel, and the target the mimic
would see is no longer hatching but a grey tone (docs/protection.md, "The target at the mimic's size"). Rendered
on the image shrunk as the mimic shrinks it, the target has strokes a few pixels wide at that size, so that what
the cloak moves the encoder toward there is still a style. The price: at the posted size the target is the
enlarged small rendition, soft and coarse, which is what the full-size view of the cloak then aims at.

Measured: it did not help our test mimic (the prints posted at 512 px: 0.17 against 0.29 for clean art), so it
stays an experiment, off by default (``CloakSettings.target_at_mimic_size``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..countermeasures import downscale
from ..metrics import mimic_view_factors
from ..settings import is_factor
from .base import TargetStyle

__all__ = ["RenderedAtMimicSize", "target_at_mimic_size"]


@dataclass(frozen=True)
class RenderedAtMimicSize:
    """``style`` rendered on the image shrunk by ``factor`` (as :func:`stylecloak.countermeasures.downscale`
    shrinks it), enlarged back to the image's size (bicubic). A :class:`~stylecloak.targets.base.TargetStyle`."""

    style: TargetStyle
    factor: float

    def __post_init__(self) -> None:
        if not is_factor(self.factor):
            raise ValueError(f"factor must be a number >= 1, got {self.factor!r}")

    @property
    def name(self) -> str:
        # Its own name, so that the target cache never hands out the full-size rendition for it (or the reverse).
        return self.style.name if self.factor == 1 else f"{self.style.name}@1/{self.factor}"

    @property
    def description(self) -> str:
        return f"{self.style.description} (drawn at 1/{self.factor} of the size, as the mimic sees it)"

    def render(self, image: torch.Tensor, seed: int = 0) -> torch.Tensor:
        if self.factor == 1:
            return self.style.render(image, seed=seed)
        rendered = self.style.render(downscale(image, self.factor), seed=seed)
        enlarged = F.interpolate(rendered, size=image.shape[-2:], mode="bicubic", align_corners=False)
        return enlarged.clamp(0, 1).to(image.dtype)


def target_at_mimic_size(style: TargetStyle, mimic_downscales: tuple[float, ...], size: tuple[int, ...]) -> TargetStyle:
    """``style`` drawn for the smallest view of an image of ``size`` (height, width) that the cloak is optimised
    for (the largest of ``mimic_downscales`` that ``mimic_view_factors`` keeps), or ``style`` itself when there
    is none: the full size is then all the mimic is assumed to see."""
    factors = mimic_view_factors(tuple(mimic_downscales), tuple(size))
    return RenderedAtMimicSize(style, max(factors)) if factors else style
