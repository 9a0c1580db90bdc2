"""How visible a cloak is, and the bounds that keep it invisible everywhere, not only on average.

Whole-image LPIPS (the paper's measure) is a spatial mean over AlexNet features whose first layer has a stride
of 4. Both let an optimiser hide a visible change: the mean lets it concentrate the change where it pays, and
the stride leaves fine, high-frequency patterns nearly unseen, so a smooth sky can turn into speckle while LPIPS
stays within budget. Three further measures close those gaps, and every cloak is held to all of them:

- a per-pixel bound from a just-noticeable-difference (JND) model: flat paper and sky may change by a level or
  two, busy brush strokes by more (texture masking), dark and bright areas a little more than mid-tones
  (luminance adaptation). It is a hard box on the perturbation, in whole 8-bit levels, so rounding to the
  saved 8-bit image never exceeds it;
- SSIM over the image and a floor on the mean SSIM of every 64 px window (``ssim_window_min``), which reads
  the local structure of flat areas that LPIPS averages away;
- PSNR, a plain bound on the energy of the change.

:func:`enforce_bounds` is the guarantee: it scales the optimised perturbation down by bisection until the
saved 8-bit image meets every bound, measured at full size with the same functions that the reports use. A
scale of zero (the original itself) always meets them, so a violation cannot be written; if only a negligible
cloak survives, :class:`VisibilityBoundError` says which bound could not be met.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import (
    SSIM_REPORT_WINDOW,
    SSIM_WINDOW,
    lpips_distance,
    psnr,
    ssim_and_map,
    ssim_map,
    window_means,
    window_starts,
)


@dataclass(frozen=True)
class VisibilityBounds:
    """The limits one cloak must keep, all measured on the saved 8-bit image at its full size.

    ``lpips``: whole-image LPIPS (AlexNet) at most this. ``ssim_min``: mean SSIM at least this.
    ``ssim_window_min``: the mean SSIM of every 64 px window at least this. ``psnr_min``: PSNR in dB at least this.
    ``jnd_strength``: the per-pixel bound is this multiple of the JND model's threshold (0 turns the box off).
    ``max_change``: no channel of any pixel changes by more than this many 8-bit levels.
    """

    lpips: float = 0.05
    ssim_min: float = 0.93
    ssim_window_min: float = 0.85
    psnr_min: float = 30.0
    jnd_strength: float = 1.0
    max_change: int = 12

    def __post_init__(self) -> None:
        if not 0 < self.lpips < 1:
            raise ValueError(f"the LPIPS budget must be in (0, 1), got {self.lpips}")
        for name in ("ssim_min", "ssim_window_min"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.psnr_min < 0:
            raise ValueError(f"psnr_min must be >= 0 dB, got {self.psnr_min}")
        if self.jnd_strength < 0:
            raise ValueError(f"jnd_strength must be >= 0, got {self.jnd_strength}")
        if not 1 <= self.max_change <= 255:
            raise ValueError(f"max_change must be 1 to 255 levels, got {self.max_change}")

    @classmethod
    def of(cls, source: Any) -> VisibilityBounds:
        """The bounds held by a settings object (CloakSettings, an intensity preset, OptimizerConfig), whose
        ``budget`` is the LPIPS bound and whose other bound fields have these names."""
        return cls(
            lpips=source.budget,
            ssim_min=source.ssim_min,
            ssim_window_min=source.ssim_window_min,
            psnr_min=source.psnr_min,
            jnd_strength=source.jnd_strength,
            max_change=source.max_change,
        )


@dataclass(frozen=True)
class VisibilityFigures:
    """What a cloak's saved image measures against its original (the report's visibility fields)."""

    lpips: float
    ssim: float
    ssim_window_min: float
    psnr: float | None  # dB; None for identical images (infinite PSNR is not valid JSON)
    max_change: int  # the largest change of one channel of one pixel, in 8-bit levels

    def violations(self, bounds: VisibilityBounds) -> list[str]:
        """One phrase per bound that these figures break (empty when all hold); each starts with the figure's
        name, which ``EnforcedCloak.limited_by`` keeps."""
        broken = []
        if self.lpips > bounds.lpips:
            broken.append(f"lpips {self.lpips:.4f} > {bounds.lpips}")
        if self.ssim < bounds.ssim_min:
            broken.append(f"ssim {self.ssim:.4f} < {bounds.ssim_min}")
        if self.ssim_window_min < bounds.ssim_window_min:
            broken.append(f"ssim_window_min {self.ssim_window_min:.4f} < {bounds.ssim_window_min}")
        if self.psnr is not None and self.psnr < bounds.psnr_min:
            broken.append(f"psnr {self.psnr:.2f} dB < {bounds.psnr_min}")
        if self.max_change > bounds.max_change:
            broken.append(f"max_change {self.max_change} > {bounds.max_change}")
        return broken

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class VisibilityBoundError(ValueError):
    """No cloak worth writing meets the visibility bounds on this image; the message names the bound."""


# --------------------------------------------------------------------------------------------- the JND model

# Chou and Li (1995), "A perceptually tuned subband image coder based on the measure of just-noticeable-
# distortion profile": the visibility threshold of a change on a flat background of grey level ``bg`` (0-255)
# is 17 * (1 - sqrt(bg / 127)) + 3 levels below mid-grey and 3 / 128 * (bg - 127) + 3 above it.
_LUMINANCE_DARK_GAIN, _LUMINANCE_BRIGHT_SLOPE, _LUMINANCE_FLOOR = 17.0, 3.0 / 128.0, 3.0
# Texture masking: the threshold grows with the local contrast (the standard deviation of luminance in a 7 px
# window); the NAMM rule of Yang et al. (2005) combines the two with an overlap factor of 0.3.
_TEXTURE_GAIN = 0.5
_MASKING_OVERLAP = 0.3
_ACTIVITY_WINDOW = 7
_BACKGROUND_WINDOW = 5
# The luminance term alone allows up to 20 levels in black areas; measured on paintings, a change of that size
# in a flat dark area is visible on a modern screen, so the luminance term is capped at twice its mid-grey value.
_LUMINANCE_CAP = 6.0


def _box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, [size // 2] * 4, mode="replicate"), size, stride=1)


def jnd_threshold(image: torch.Tensor) -> torch.Tensor:
    """The just-noticeable change at each pixel of a 1x3xHxW image in [0, 1], in 8-bit levels (1x1xHxW float):
    about 3 levels on flat mid-grey, more in dark and bright areas and much more in busy texture."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    luma = (image * weights).sum(dim=1, keepdim=True) * 255.0
    background = _box_mean(luma, _BACKGROUND_WINDOW)
    dark = _LUMINANCE_DARK_GAIN * (1 - torch.sqrt(background.clamp(min=0) / 127.0)) + _LUMINANCE_FLOOR
    bright = _LUMINANCE_BRIGHT_SLOPE * (background - 127.0) + _LUMINANCE_FLOOR
    luminance = torch.where(background <= 127.0, dark, bright).clamp(max=_LUMINANCE_CAP)
    mean = _box_mean(luma, _ACTIVITY_WINDOW)
    activity = (_box_mean(luma * luma, _ACTIVITY_WINDOW) - mean * mean).clamp(min=0).sqrt()
    texture = _TEXTURE_GAIN * activity
    return luminance + texture - _MASKING_OVERLAP * torch.minimum(luminance, texture)


def allowed_change(image: torch.Tensor, bounds: VisibilityBounds) -> torch.Tensor:
    """The per-pixel box of the perturbation, as a fraction of full scale (1x1xHxW, whole 8-bit levels / 255).

    Whole levels matter: the original is on the 8-bit grid, so ``x + d`` with ``|d| <= k / 255`` rounds to a
    value that is still within ``k`` levels of ``x``. Every pixel may move by at least one level (an invisible
    dither, and without it flat areas could not carry any of the cloak)."""
    if bounds.jnd_strength == 0:
        levels = torch.full_like(image[:, :1], float(bounds.max_change))
    else:
        levels = torch.floor(bounds.jnd_strength * jnd_threshold(image)).clamp(1, bounds.max_change)
    return levels / 255.0


# ------------------------------------------------------------------------------------------------- measuring


def measure_visibility(
    metric: torch.nn.Module, original: torch.Tensor, cloaked: torch.Tensor, window: int = SSIM_REPORT_WINDOW
) -> VisibilityFigures:
    """Every visibility figure of ``cloaked`` against ``original`` (1x3xHxW, 8-bit values in [0, 1]), at full size."""
    mean_ssim, local = ssim_and_map(original, cloaked)  # one SSIM pass serves both figures
    quality = psnr(original, cloaked)
    return VisibilityFigures(
        lpips=lpips_distance(metric, original, cloaked),
        ssim=mean_ssim,
        ssim_window_min=float(window_means(local, window).min()),
        psnr=None if math.isinf(quality) else quality,
        max_change=round(float((original - cloaked).abs().max()) * 255),
    )


@dataclass(frozen=True)
class EnforcedCloak:
    """The cloak that is written: its 8-bit image, its figures, and how far the optimised change was scaled."""

    image: torch.Tensor
    figures: VisibilityFigures
    scale: float
    limited_by: list[str]  # the bounds the full-strength change broke (empty when it met them all)


def enforce_bounds(
    original: torch.Tensor,
    delta: torch.Tensor,
    metric: torch.nn.Module,
    bounds: VisibilityBounds,
    iterations: int = 12,
    min_scale: float = 0.05,
) -> EnforcedCloak:
    """The 8-bit image of ``original + s * delta`` with the largest ``s`` in [0, 1] that meets every bound, measured
    at full size exactly as the reports measure it (the returned figures are that measurement).

    ``s = 1`` is tried first; otherwise a bisection keeps the largest passing scale, and the returned image is
    the one that was measured. Raises :class:`VisibilityBoundError` when even ``min_scale`` of the change breaks
    a bound: then no real cloak can be written within the bounds, and saying so beats writing the original.
    """
    if not bool(delta.abs().max() * 255 >= 0.5):
        raise VisibilityBoundError("the optimiser found no change to make within the visibility bounds")

    def candidate(scale: float) -> tuple[torch.Tensor, VisibilityFigures]:
        image = _quantize(original + scale * delta)
        return image, measure_visibility(metric, original, image)

    image, figures = candidate(1.0)
    first_violations = figures.violations(bounds)
    if not first_violations:
        return EnforcedCloak(image, figures, 1.0, [])
    low, high, best = 0.0, 1.0, None
    for _ in range(iterations):
        mid = (low + high) / 2
        trial_image, trial_figures = candidate(mid)
        if trial_figures.violations(bounds):
            high = mid
        else:
            low, best = mid, (trial_image, trial_figures)
    if best is None or low < min_scale or best[1].max_change == 0:
        last = candidate(max(low, min_scale))[1].violations(bounds) or first_violations
        raise VisibilityBoundError(
            f"no cloak meets the visibility bounds on this image ({'; '.join(last)} even at "
            f"{100 * max(low, min_scale):.0f}% strength); relax that bound or pick a higher intensity"
        )
    return EnforcedCloak(best[0], best[1], low, [v.split(" ")[0] for v in first_violations])


def _quantize(image: torch.Tensor) -> torch.Tensor:
    return torch.round(image.clamp(0, 1) * 255) / 255


# ------------------------------------------------------------------------------------------------- heat map

# The heat map's scale: 1 - local SSIM of 0 (no visible change) to this value (clearly visible) spans the colours,
# the same for every image, so that two maps can be compared.
HEATMAP_FULL_SCALE = 0.3
_HEAT_COLOURS = np.array([[0, 0, 0], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]], dtype=np.float32)


def change_heatmap(original: torch.Tensor, cloaked: torch.Tensor, window: int = 16) -> np.ndarray:
    """Where the cloak is most visible: ``1 - local SSIM`` averaged over ``window`` px, coloured from dark (no
    change) to light yellow (``HEATMAP_FULL_SCALE`` or more) and laid over a faint grey copy of the original,
    with the worst 64 px window outlined. An 8-bit HxWx3 array at the image's size."""
    height, width = original.shape[-2:]
    local = ssim_map(original, cloaked)
    damage = (1 - local).clamp(min=0)[None, None]
    damage = F.pad(damage, [5, 5, 5, 5], mode="replicate")  # back to the image's size (the 11 px window's margin)
    damage = _box_mean(damage, window | 1)[0, 0].numpy()
    level = np.clip(damage / HEATMAP_FULL_SCALE, 0, 1) * (len(_HEAT_COLOURS) - 1)
    lower = np.floor(level).astype(int).clip(0, len(_HEAT_COLOURS) - 2)
    frac = (level - lower)[..., None]
    colour = _HEAT_COLOURS[lower] * (1 - frac) + _HEAT_COLOURS[lower + 1] * frac
    grey = (original[0].mean(dim=0).numpy() * 255.0)[..., None]
    heat = 0.75 * colour + 0.25 * grey
    top, left = worst_window(original, cloaked, local=local)
    size_r, size_c = min(SSIM_REPORT_WINDOW, height), min(SSIM_REPORT_WINDOW, width)
    outline = np.array([0, 255, 255], dtype=np.float32)
    heat[top, left : left + size_c] = heat[top + size_r - 1, left : left + size_c] = outline
    heat[top : top + size_r, left] = heat[top : top + size_r, left + size_c - 1] = outline
    return np.clip(np.round(heat), 0, 255).astype(np.uint8)


def worst_window(
    original: torch.Tensor, cloaked: torch.Tensor, window: int = SSIM_REPORT_WINDOW, local: torch.Tensor | None = None
) -> tuple[int, int]:
    """Top-left pixel of the ``window`` px window with the lowest mean SSIM (the one ``ssim_window_min`` reports),
    in image coordinates, clipped to the image. ``local`` is their :func:`ssim_map`, if already computed."""
    local = ssim_map(original, cloaked) if local is None else local
    means = window_means(local, window)
    flat = int(torch.argmin(means))
    row, col = divmod(flat, means.shape[1])
    stride = max(1, window // 2)
    top = window_starts(local.shape[0], window, stride)[row]
    left = window_starts(local.shape[1], window, stride)[col]
    height, width = original.shape[-2:]
    margin = SSIM_WINDOW // 2  # map position p is the window centred on pixel p + 5
    return min(top + margin, max(0, height - window)), min(left + margin, max(0, width - window))
