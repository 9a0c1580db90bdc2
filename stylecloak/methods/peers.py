"""The published peer methods, as we read their papers and public code (docs/benchmarks.md), on any
:class:`LatentEncoder`:

- PhotoGuard's encoder attack (Salman et al., ICML 2023, arXiv 2302.06588): L-infinity PGD that moves
  ``E(x + d)`` to the latent of a fixed grey image. Its public notebook works on [-1, 1] with eps 0.06, step
  0.02 (a third of eps), decaying linearly to 1/100 of itself, and 1000 iterations. Here eps is given on the
  [0, 1] scale (16/255 and 8/255); the step keeps the ratio and the decay.
- Mist, textural loss only (Liang et al., ICML 2023, arXiv 2302.04578): L-infinity PGD toward the latent of a
  fixed pattern image, eps 16/255, step 1/255, 100 iterations (Mist's defaults). Mist's semantic loss needs the
  diffusion model's noise prediction and is left out: this is Mist's textural half, and the reports say so.
- Glaze app v1 procedure (as the Glaze paper and app describe it): the image is cut into squares, each resized to 512 px, and
  L-infinity PGD with sign steps (step 0.5 * max_change, decaying) moves the square's latent toward the style
  target's; each square's perturbation is resized back and added. No perceptual term: the visible cost is
  whatever max_change gives.

None of them has a perceptual budget. The comparison benchmark matches their cost afterwards (see
:func:`stylecloak.methods.matching.match_budget`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..imaging import quantize_8bit
from ..models.encoders import LatentEncoder
from ..models.tiled import TiledEncoder
from ..optimize import autocast_context
from .base import MethodResult


def linf_pgd(
    original: torch.Tensor,
    target: torch.Tensor,
    encoder: LatentEncoder,
    eps: float,
    step_size: float,
    steps: int,
    final_step_fraction: float = 0.01,
    tile_size: int = 512,
    precision: str = "auto",
    on_step: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Sign-gradient PGD on ``||E(x + d) - E(target)||^2`` with ``|d| <= eps``; the step decays linearly from
    ``step_size`` to ``final_step_fraction * step_size`` (PhotoGuard's schedule). Returns the 8-bit image.

    ``precision`` is the optimiser's (:func:`stylecloak.optimize.autocast_dtype`): the peers get the same
    arithmetic as stylecloak, so that a comparison of times compares the methods, not the engines."""
    tiled = TiledEncoder(encoder, original.shape[-2], original.shape[-1], tile_size)
    target_latents = tiled.encode(target)
    delta = torch.zeros_like(original)
    encoder_precision = autocast_context(precision, original.device)
    for step in range(steps):
        alpha = step_size - (step_size - step_size * final_step_fraction) * step / max(1, steps)
        image = (original + delta).requires_grad_(True)
        with encoder_precision:
            tiled.backward(image, lambda latents: (latents - target_latents).pow(2).sum())
        assert image.grad is not None
        with torch.no_grad():
            delta -= alpha * image.grad.sign()
            delta.clamp_(-eps, eps)
            delta.copy_((original + delta).clamp(0, 1) - original)
        if on_step is not None:
            on_step(step)
    return quantize_8bit(original + delta)


@dataclass
class PhotoGuardEncoderAttack:
    eps: float = 16 / 255
    steps: int = 1000
    step_ratio: float = 1 / 3  # the notebook's step 0.02 for eps 0.06
    grey: float = 0.5

    @property
    def name(self) -> str:
        return f"photoguard-eps{round(self.eps * 255)}"

    @property
    def description(self) -> str:
        return f"PhotoGuard encoder attack: L-inf PGD toward a grey image, eps {round(self.eps * 255)}/255, {self.steps} steps"

    def cloak(
        self, original: torch.Tensor, style_target: torch.Tensor, encoder: LatentEncoder, perceptual: torch.nn.Module
    ) -> MethodResult:
        target = torch.full_like(original, self.grey)
        cloaked = linf_pgd(original, target, encoder, self.eps, self.eps * self.step_ratio, self.steps)
        return MethodResult(cloaked, target, self.steps)


def mist_pattern(height: int, width: int, period: int = 32) -> torch.Tensor:
    """A fixed, high-contrast pattern in place of Mist's pattern image (which we do not ship): diagonal stripes
    crossed with a checkerboard of coloured cells, the kind of texture Mist's target imposes."""
    rows = torch.arange(height, dtype=torch.float32).view(-1, 1)
    cols = torch.arange(width, dtype=torch.float32).view(1, -1)
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * (rows + cols) / (period / 2))
    checker = (torch.div(rows, period, rounding_mode="floor") + torch.div(cols, period, rounding_mode="floor")) % 2
    red = stripes * (0.3 + 0.7 * checker)
    green = (1 - stripes) * (1 - 0.7 * checker)
    blue = 0.5 * stripes + 0.5 * checker
    return torch.stack([red, green, blue]).unsqueeze(0).clamp(0, 1)


@dataclass
class MistTextural:
    eps: float = 16 / 255
    steps: int = 100
    step_size: float = 1 / 255

    name: str = "mist-textural"

    @property
    def description(self) -> str:
        return f"Mist, textural loss only: L-inf PGD toward a fixed pattern, eps {round(self.eps * 255)}/255, {self.steps} steps"

    def cloak(
        self, original: torch.Tensor, style_target: torch.Tensor, encoder: LatentEncoder, perceptual: torch.nn.Module
    ) -> MethodResult:
        target = mist_pattern(original.shape[-2], original.shape[-1]).to(original)
        # Mist steps with a constant size: no decay.
        cloaked = linf_pgd(original, target, encoder, self.eps, self.step_size, self.steps, final_step_fraction=1.0)
        return MethodResult(cloaked, target, self.steps)


def square_windows(height: int, width: int) -> list[tuple[int, int, int]]:
    """(top, left, side) of the squares that cover the image: side = the short side, evenly spread along the long
    side (the last one flush with the edge)."""
    side = min(height, width)
    long_side = max(height, width)
    count = math.ceil(long_side / side)
    starts = [round(i * (long_side - side) / max(1, count - 1)) for i in range(count)]
    return [(s, 0, side) if height > width else (0, s, side) for s in starts]


@dataclass
class GlazeV1:
    max_change: float = 16 / 255
    steps: int = 100
    square: int = 512

    name: str = "glaze-v1"

    @property
    def description(self) -> str:
        return (
            f"Glaze app v1 procedure: {self.square} px squares, sign steps (0.5 * max_change, decaying), "
            f"max_change {round(self.max_change * 255)}/255, {self.steps} steps"
        )

    def cloak(
        self, original: torch.Tensor, style_target: torch.Tensor, encoder: LatentEncoder, perceptual: torch.nn.Module
    ) -> MethodResult:
        height, width = original.shape[-2:]
        total = torch.zeros_like(original)
        count = torch.zeros_like(original[:, :1])
        for top, left, side in square_windows(height, width):
            crop = original[..., top : top + side, left : left + side]
            crop_target = style_target[..., top : top + side, left : left + side]
            big, big_target = (_resize(x, self.square) for x in (crop, crop_target))
            cloaked = linf_pgd(big, big_target, encoder, self.max_change, 0.5 * self.max_change, self.steps)
            # The weak spot of this procedure: the perturbation is made at 512 px and resized to the square.
            total[..., top : top + side, left : left + side] += _resize(cloaked - big, side)
            count[..., top : top + side, left : left + side] += 1
        delta = (total / count.clamp(min=1)).clamp(-self.max_change, self.max_change)
        return MethodResult(quantize_8bit(original + delta), style_target, self.steps)


def _resize(image: torch.Tensor, side: int) -> torch.Tensor:
    if image.shape[-1] == side and image.shape[-2] == side:
        return image
    return F.interpolate(image, size=(side, side), mode="bicubic", align_corners=False, antialias=True)
