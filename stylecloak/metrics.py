"""The metrics every report uses (DESIGN.md section 5), in one place so that they mean the same everywhere."""

from __future__ import annotations

import torch

from .models.encoders import LatentEncoder
from .models.tiled import TiledEncoder
from .tiling import plan_tiles

# Whole-image LPIPS is exact and cheap for AlexNet up to this size; beyond it we average over large tiles, so
# that measuring never needs much more memory than cloaking.
WHOLE_IMAGE_LPIPS_MAX_PIXELS = 16_000_000
MEASURE_TILE_SIZE = 2048


def lpips_distance(metric: torch.nn.Module, original: torch.Tensor, cloaked: torch.Tensor) -> float:
    """LPIPS between two 1x3xHxW images in [0, 1], at their full resolution (scaled to [-1, 1] inside)."""
    height, width = original.shape[-2:]
    with torch.no_grad():
        if height * width <= WHOLE_IMAGE_LPIPS_MAX_PIXELS:
            return float(metric(original, cloaked, normalize=True).sum())
        tiles = plan_tiles(height, width, MEASURE_TILE_SIZE, context=0)
        total = sum(t.core_area for t in tiles)
        return sum(float(metric(original[..., t.crop[0], t.crop[1]], cloaked[..., t.crop[0], t.crop[1]], normalize=True).sum())
                   * t.core_area / total for t in tiles)


def target_progress(
    encoder: LatentEncoder, original: torch.Tensor, cloaked: torch.Tensor, target: torch.Tensor, tile_size: int = 512
) -> float:
    """``1 - ||E(cloaked) - E(t)|| / ||E(x) - E(t)||``: 0 is no effect, 1 means the encoder sees the target."""
    tiled = TiledEncoder(encoder, original.shape[-2], original.shape[-1], tile_size)
    target_latents = tiled.encode(target)
    start = float((tiled.encode(original) - target_latents).norm())
    now = float((tiled.encode(cloaked) - target_latents).norm())
    return 1.0 - now / start if start > 0 else 0.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a - b).pow(2).mean())
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(1.0 / mse)).item()
