"""The metrics every report uses (docs/metrics.md), in one place so that they mean the same everywhere."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from .countermeasures import decode_latents, downscale
from .descriptors import gram_matrix
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
        return sum(
            float(metric(original[..., t.crop[0], t.crop[1]], cloaked[..., t.crop[0], t.crop[1]], normalize=True).sum())
            * t.core_area
            / total
            for t in tiles
        )


class TargetProgress:
    """``target_progress`` of many images (say, after each countermeasure) against one original and target.

    ``E(t)`` and ``||E(x) - E(t)||`` are computed once, so each further image costs one tiled encode.
    """

    def __init__(
        self, encoder: LatentEncoder, original: torch.Tensor, target: torch.Tensor, tile_size: int = 512
    ) -> None:
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


def progress_toward(seen: Sequence[torch.Tensor]) -> float:
    """``1 - ||cloaked - target|| / ||original - target||`` of (original, cloaked, target) as some model sees
    them (latents, pixels, style statistics): 0 no move, 1 all the way; 0 where original and target look alike."""
    start = float((seen[0] - seen[2]).norm())
    return 1.0 - float((seen[1] - seen[2]).norm()) / start if start > 0 else 0.0


def latent_and_decoded_progress(
    encoder: LatentEncoder,
    original: torch.Tensor,
    cloaked: torch.Tensor,
    target: torch.Tensor,
    tile_size: int = 512,
    decoded: bool = True,
) -> tuple[float, float | None]:
    """``target_progress`` and :func:`decoded_target_progress` from one encode of each image (the decoder's
    figure None unless ``decoded`` and the encoder can decode)."""
    height, width = original.shape[-2:]
    tiled = TiledEncoder(encoder, height, width, tile_size)
    latents = [tiled.encode(image) for image in (original, cloaked, target)]
    if not (decoded and encoder.can_decode):
        return progress_toward(latents), None
    return progress_toward(latents), progress_toward([decode_latents(encoder, z, height, width) for z in latents])


def decoded_target_progress(
    encoder: LatentEncoder, original: torch.Tensor, cloaked: torch.Tensor, target: torch.Tensor, tile_size: int = 512
) -> float:
    """``target_progress`` of what the decoder makes of the latents: ``1 - ||D(E(cloaked)) - D(E(t))|| /
    ||D(E(x)) - D(E(t))||`` in pixels, each decoded image clamped to [0, 1] as a picture holds it. A latent mimic
    can at best reproduce the decoder's image of what it learned, and a cloak can move the latents in
    directions the decoder ignores, which the latent figure counts and this one does not. Encoding and
    decoding both run in tiles (``countermeasures.decode_latents``), so memory stays bounded on large images.
    Needs an encoder with a decoder."""
    if not encoder.can_decode:
        raise ValueError(f"encoder {encoder.name!r} has no decoder")
    decoded = latent_and_decoded_progress(encoder, original, cloaked, target, tile_size)[1]
    assert decoded is not None
    return decoded


def perceptual_grams(perceptual: torch.nn.Module, image: torch.Tensor, layers: int | None = None) -> torch.Tensor:
    """The Gram matrices of the perceptual metric's unit-normalised features of ``image`` (1x3xHxW in [0, 1]),
    one flat vector over its first ``layers`` layers (None: all): the image's style statistics, wherever
    anything is (Gatys et al.). Each layer's Gram has trace 1 (every position's feature vector has unit
    length), so the layers weigh alike. ``perceptual`` is the LPIPS module (its ``features``)."""
    features = perceptual.features(image, normalize=True)
    if layers is not None and not 1 <= layers <= len(features):
        raise ValueError(f"layers must be between 1 and {len(features)}, got {layers}")
    return torch.cat([gram_matrix(layer).flatten() for layer in features[:layers]])


@torch.no_grad()
def decoded_gram_progress(
    encoder: LatentEncoder,
    perceptual: torch.nn.Module,
    original: torch.Tensor,
    cloaked: torch.Tensor,
    target: torch.Tensor,
    tile_size: int = 512,
    layers: int | None = None,
) -> float:
    """``target_progress`` of the style statistics of what the decoder makes of the latents: ``1 - ||G(cloaked)
    - G(t)|| / ||G(x) - G(t)||``, with G the Gram statistics (``perceptual_grams``, of the network's first
    ``layers`` layers; None: all) of ``D(E(.))`` (decoded in tiles, in [0, 1]). The figure of the
    "decoded-gram" view objective when ``layers`` is its ``view_gram_layers``. Needs an encoder with a decoder."""
    if not encoder.can_decode:
        raise ValueError(f"encoder {encoder.name!r} has no decoder")
    height, width = original.shape[-2:]
    tiled = TiledEncoder(encoder, height, width, tile_size)
    seen = [decode_latents(encoder, tiled.encode(image), height, width) for image in (original, cloaked, target)]
    return progress_toward([perceptual_grams(perceptual, image, layers) for image in seen])


# Where a mimic looks: it shrinks scraped art to its training size, typically 2-4x smaller than what is posted.
MIMIC_DOWNSCALES = (1, 2, 4)
# Below this many pixels on a side the encoder has too little to see (TAEF2 works on 8 px cells).
MIN_SCALED_SIDE = 32


def mimic_view_factors(factors: tuple[float, ...], size: tuple[int, ...]) -> list[float]:
    """The shrink factors the optimiser also works at for an image of ``size`` (height, width): those above 1
    that leave both sides at least MIN_SCALED_SIDE px. Smaller than that, the encoder sees a few latent cells
    and reports leave the figure out (``progress_by_scale``), so it would cost steps and measure nothing."""
    return [f for f in factors if f > 1 and min(round(side / f) for side in size) >= MIN_SCALED_SIDE]


def scale_key(factor: float) -> str:
    """The key of a shrink factor in the tables by scale: ``2`` -> "2x", ``2.5`` -> "2.5x", ``3.5088`` -> "3.51x"
    (two decimals: a per-image factor from a mimic's training size is rarely whole)."""
    return f"{round(float(factor), 2):g}x"


def scale_fraction(key: str) -> str:
    """The size a key of :func:`scale_key` names, as people read it: "3.51x" -> "1/3.51" (of the posted size)."""
    if not key.endswith("x"):
        raise ValueError(f"not a key of the tables by scale: {key!r} (expected e.g. '2x')")
    return f"1/{key.removesuffix('x')}"


def progress_tables(
    encoder: LatentEncoder,
    original: torch.Tensor,
    cloaked: torch.Tensor,
    target: torch.Tensor,
    factors: Sequence[float] = MIMIC_DOWNSCALES,
    tile_size: int = 512,
    decoded: bool = True,
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """``target_progress`` where the mimic looks: original, cloak and target each shrunk by every factor (as a
    training pipeline resizes scraped art), then measured as usual; and the same for the decoder's image of the
    latents (:func:`decoded_target_progress`, what a latent mimic can give back), from the same encodes. A
    cloak that only works at the posted size shows it here. Keys "1x", "2x", ... (:func:`scale_key`); None where
    the shrunk image is too small for the encoder. The second table is empty unless ``decoded`` and the encoder
    can decode."""
    with_decoder = decoded and encoder.can_decode
    latent: dict[str, float | None] = {}
    seen_decoded: dict[str, float | None] = {}
    for factor in factors:
        key = scale_key(factor)
        small = [downscale(image, factor) for image in (original, cloaked, target)]
        if min(small[0].shape[-2:]) < MIN_SCALED_SIDE:
            latent[key] = seen_decoded[key] = None
        else:
            latent[key], seen_decoded[key] = latent_and_decoded_progress(encoder, *small, tile_size, with_decoder)
    return latent, seen_decoded if with_decoder else {}


def progress_by_scale(
    encoder: LatentEncoder,
    original: torch.Tensor,
    cloaked: torch.Tensor,
    target: torch.Tensor,
    factors: Sequence[float] = MIMIC_DOWNSCALES,
    tile_size: int = 512,
) -> dict[str, float | None]:
    """The latent table of :func:`progress_tables` alone."""
    return progress_tables(encoder, original, cloaked, target, factors, tile_size, decoded=False)[0]


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


def _ssim_channel_map(a: torch.Tensor, b: torch.Tensor, window: torch.Tensor, data_range: float) -> torch.Tensor:
    """The SSIM map over all valid window positions, per channel (NxCx(H-10)x(W-10))."""
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
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def _check_ssim_inputs(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"ssim expects two NxCxHxW images of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    height, width = a.shape[-2:]
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {width}x{height}")


def _ssim_strips(a: torch.Tensor, b: torch.Tensor, data_range: float, dtype: torch.dtype) -> Iterator[torch.Tensor]:
    """The per-channel SSIM map in strips of rows (overlapping by the window, so the strips join exactly)."""
    a, b = a.detach().to(dtype), b.detach().to(dtype)
    window = _ssim_window(dtype, a.device)
    out_rows = a.shape[-2] - SSIM_WINDOW + 1
    with torch.no_grad():
        for start in range(0, out_rows, SSIM_STRIP_ROWS):
            stop = min(out_rows, start + SSIM_STRIP_ROWS) + SSIM_WINDOW - 1
            yield _ssim_channel_map(a[..., start:stop, :], b[..., start:stop, :], window, data_range)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004) of two 1x3xHxW (or NxCxHxW) images in [0, ``data_range``].

    The standard definition: an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, population
    (not sample) statistics, only windows that lie wholly inside the image (no padding, as in the authors'
    ``ssim_index.m``), and no automatic downsampling. Colour images are measured per RGB channel and the
    channels averaged (as ``skimage.metrics.structural_similarity(..., channel_axis)`` does), not on luminance.
    Computed in float64, in strips of rows, so that a large image needs little memory; strips overlap by the
    window, so the result is the same as one whole-image pass.
    """
    _check_ssim_inputs(a, b)
    total, count = 0.0, 0
    for strip in _ssim_strips(a, b, data_range, torch.float64):
        total, count = total + float(strip.sum()), count + strip.numel()
    return total / count


def ssim_and_map(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> tuple[float, torch.Tensor]:
    """:func:`ssim` and :func:`ssim_map` of two 1x3xHxW images from one float64 pass (the same mean, bit for bit)."""
    _check_ssim_inputs(a, b)
    total, count, strips = 0.0, 0, []
    for strip in _ssim_strips(a[:1], b[:1], data_range, torch.float64):
        total, count = total + float(strip.sum()), count + strip.numel()
        strips.append(strip.mean(dim=1)[0].to(torch.float32))
    return total / count, torch.cat(strips, dim=0)


def ssim_map(
    a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """The local SSIM of two 1x3xHxW images, averaged over the channels: a (H-10)x(W-10) map (one value per
    position of the 11 px window that lies wholly inside the image), float32 whatever ``dtype`` computed it."""
    _check_ssim_inputs(a, b)
    strips = [strip.mean(dim=1)[0].to(torch.float32) for strip in _ssim_strips(a[:1], b[:1], data_range, dtype)]
    return torch.cat(strips, dim=0)


# The window of ``ssim_window_min``: what an artist takes in at once at 100% zoom is a patch of this order.
SSIM_REPORT_WINDOW = 64


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Starts of windows of ``window`` cells that cover [0, length) with the given stride, the last flush with
    the end (one window of the whole length when it is shorter than ``window``)."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def window_means(values: torch.Tensor, window: int = SSIM_REPORT_WINDOW, stride: int | None = None) -> torch.Tensor:
    """Means of a HxW map over square windows of ``window`` cells (stride ``window // 2``, covering the edges):
    a rows x cols grid of window means. Summed-area tables make it exact and cheap for any size."""
    stride = stride or max(1, window // 2)
    height, width = values.shape
    table = F.pad(values.to(torch.float64).cumsum(0).cumsum(1), (1, 0, 1, 0))
    rows = torch.tensor(window_starts(height, window, stride))
    cols = torch.tensor(window_starts(width, window, stride))
    size_r, size_c = min(window, height), min(window, width)
    r0, c0 = rows[:, None], cols[None, :]
    sums = table[r0 + size_r, c0 + size_c] - table[r0, c0 + size_c] - table[r0 + size_r, c0] + table[r0, c0]
    return (sums / (size_r * size_c)).to(torch.float32)


def ssim_window_min(
    a: torch.Tensor,
    b: torch.Tensor,
    window: int = SSIM_REPORT_WINDOW,
    data_range: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> float:
    """The lowest mean SSIM over ``window`` px windows (stride half a window, the edges covered): where a cloak
    is most visible, which an image-wide mean can hide. Windows are laid over the SSIM map, whose positions
    are the centres of the 11 px SSIM windows."""
    return float(window_means(ssim_map(a, b, data_range, dtype), window).min())
