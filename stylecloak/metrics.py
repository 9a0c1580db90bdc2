"""The metrics every report uses (DESIGN.md section 5), in one place so that they mean the same everywhere."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .models.encoders import LatentEncoder
from .models.tiled import TiledEncoder
from .tiling import plan_tiles

# Whole-image LPIPS is exact and cheap up to this size; beyond it we average over large tiles, so that measuring
# never needs much more memory than cloaking. VGG16 keeps 64 full-resolution channels through two convs and
# is about ten times heavier than AlexNet, so its limits are lower.
WHOLE_IMAGE_LPIPS_MAX_PIXELS = 16_000_000
MEASURE_TILE_SIZE = 2048
LPIPS_LIMITS: dict[str, tuple[int, int]] = {  # net -> (whole-image max pixels, tile size)
    "alex": (WHOLE_IMAGE_LPIPS_MAX_PIXELS, MEASURE_TILE_SIZE),
    "vgg": (2_000_000, 1024),
}


def lpips_distance(metric: torch.nn.Module, original: torch.Tensor, cloaked: torch.Tensor) -> float:
    """LPIPS between two 1x3xHxW images in [0, 1], at their full resolution (scaled to [-1, 1] inside).

    Works for both LPIPS nets (``load_lpips("alex")`` and ``load_lpips("vgg")``); very large images are measured
    as the area-weighted mean over tiles."""
    height, width = original.shape[-2:]
    max_pixels, tile_size = LPIPS_LIMITS.get(getattr(metric, "net_type", "alex"), LPIPS_LIMITS["alex"])
    with torch.no_grad():
        if height * width <= max_pixels:
            return float(metric(original, cloaked, normalize=True).sum())
        tiles = plan_tiles(height, width, tile_size, context=0)
        total = sum(t.core_area for t in tiles)
        return sum(float(metric(original[..., t.crop[0], t.crop[1]], cloaked[..., t.crop[0], t.crop[1]], normalize=True).sum())
                   * t.core_area / total for t in tiles)


class TargetProgress:
    """``target_progress`` of many images (say, after each countermeasure) against one original and target.

    ``E(t)`` and ``||E(x) - E(t)||`` are computed once, so each further image costs one tiled encode.
    """

    def __init__(self, encoder: LatentEncoder, original: torch.Tensor, target: torch.Tensor, tile_size: int = 512) -> None:
        self.tiled = TiledEncoder(encoder, original.shape[-2], original.shape[-1], tile_size)
        self.target_latents = self.tiled.encode(target)
        self.start = float((self.tiled.encode(original) - self.target_latents).norm())

    def __call__(self, image: torch.Tensor) -> float:
        now = float((self.tiled.encode(image) - self.target_latents).norm())
        return 1.0 - now / self.start if self.start > 0 else 0.0


def target_progress(
    encoder: LatentEncoder, original: torch.Tensor, cloaked: torch.Tensor, target: torch.Tensor, tile_size: int = 512
) -> float:
    """``1 - ||E(cloaked) - E(t)|| / ||E(x) - E(t)||``: 0 is no effect, 1 means the encoder sees the target."""
    return TargetProgress(encoder, original, target, tile_size)(cloaked)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]; ``inf`` when they are identical."""
    mse = float((a - b).pow(2).mean())
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(1.0 / mse)).item()


# SSIM constants of Wang, Bovik, Sheikh and Simoncelli (IEEE TIP 2004).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_STRIP_ROWS = 1024  # rows of output per strip: bounds memory on large images without changing the result


def _ssim_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(SSIM_WINDOW, dtype=torch.float64) - (SSIM_WINDOW - 1) / 2
    window = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    return (window / window.sum()).to(dtype=dtype, device=device)


def _ssim_map_sum(a: torch.Tensor, b: torch.Tensor, window: torch.Tensor, data_range: float) -> tuple[float, int]:
    """Sum and count of the SSIM map over all valid window positions and channels of ``a`` and ``b``."""
    channels = a.shape[1]
    rows = window.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    cols = window.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable Gaussian, 'valid' (no padding), per channel
        return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)

    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.sum()), ssim_map.numel()


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004) of two 1x3xHxW (or NxCxHxW) images in [0, ``data_range``].

    The standard definition: an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, population
    (not sample) statistics, only windows that lie wholly inside the image (no padding, as in the authors'
    ``ssim_index.m``), and no automatic downsampling. Colour images are measured per RGB channel and the
    channels averaged (as ``skimage.metrics.structural_similarity(..., channel_axis)`` does), not on luminance.
    Computed in float64, in strips of rows, so that a large image needs little memory; strips overlap by the
    window, so the result is the same as one whole-image pass.
    """
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"ssim expects two NxCxHxW images of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    height, width = a.shape[-2:]
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {width}x{height}")
    a, b = a.detach().to(torch.float64), b.detach().to(torch.float64)
    window = _ssim_window(torch.float64, a.device)
    total, count = 0.0, 0
    out_rows = height - SSIM_WINDOW + 1
    with torch.no_grad():
        for start in range(0, out_rows, SSIM_STRIP_ROWS):
            stop = min(out_rows, start + SSIM_STRIP_ROWS) + SSIM_WINDOW - 1
            strip_sum, strip_count = _ssim_map_sum(a[..., start:stop, :], b[..., start:stop, :], window, data_range)
            total, count = total + strip_sum, count + strip_count
    return total / count
