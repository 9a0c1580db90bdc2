"""The cloak optimiser.

    minimise over delta:  ||E(x + delta) - E(t)||^2 / ||E(x) - E(t)||^2  +  alpha * max(LPIPS(x + delta, x) - p', 0)

with Adam on one full-resolution delta. Three choices make it trustworthy for the file that is actually saved:

- 8-bit aware: every forward pass sees the 8-bit image ``round(255 * (x + delta)) / 255`` and its gradient is
  passed straight through to delta. The loss and LPIPS measured at each step are those of the file that would be
  written, so "within budget" is checked on what is saved, not on a float tensor.
- Invisible everywhere, not only on average (:mod:`stylecloak.visibility`): delta lives in a per-pixel box
  from a just-noticeable-difference model (flat areas may change by a level or two, busy strokes by more), and
  every step is measured against all the visibility bounds (whole-image LPIPS, SSIM, the worst 64 px window's
  SSIM, PSNR). After each update delta is scaled so that the tightest bound is nearly used (the encoder moves
  further the more of the budget is spent); the best step that met every bound is kept, and a final bisection
  on the full-size 8-bit image makes a violation impossible.
- The LPIPS penalty is on the whole image's LPIPS, never per tile: a per-tile hinge is active on the tiles
  above the mean even when the image is within budget, and its gradient, blown up to full steps by Adam's
  per-pixel normalisation, taught the optimiser to hide the change in AlexNet's blind spots (fine speckle on
  smooth areas), which the rescaling then amplified. That was the cause of visible cloaks on images larger
  than one tile.
- Any size, bounded memory: the encoder runs tile by tile (:mod:`stylecloak.models.tiled`) and all tiles'
  gradients accumulate into the one delta, so the perturbation is never resized and tiles leave no seam.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .imaging import quantize_8bit
from .metrics import (
    WHOLE_IMAGE_LPIPS_MAX_PIXELS,
    lpips_distance,
    mimic_view_factors,
    perceptual_grams,
    ssim_map,
    window_means,
)
from .models.encoders import LatentEncoder
from .models.tiled import TiledDecoder, TiledEncoder
from .settings import CloakSettings, check_view_objective
from .visibility import VisibilityBounds, VisibilityFigures, allowed_change, enforce_bounds

if TYPE_CHECKING:
    from .models.surrogate import DenoiserTerm

_DEFAULTS = CloakSettings()

# Above this many pixels the original's LPIPS features are recomputed each step instead of kept (~40 MB per MP).
MAX_CACHED_FEATURE_PIXELS = 16_000_000


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimiser's part of :class:`~stylecloak.settings.CloakSettings`. Its defaults are the settings' own
    (one source of defaults); build it with :meth:`from_settings`, or field by field for experiments."""

    budget: float = _DEFAULTS.budget
    steps: int = _DEFAULTS.steps
    learning_rate: float = _DEFAULTS.learning_rate
    penalty_weight: float = _DEFAULTS.penalty_weight
    budget_margin: float = _DEFAULTS.budget_margin
    tile_size: int = _DEFAULTS.tile_size
    seed: int = _DEFAULTS.seed
    # Scale delta onto the working budget after each update (see the module docstring).
    rescale_to_budget: bool = True
    # The encoder's forward and backward in the optimisation steps: "bf16" (autocast), "fp32", or "auto" (bf16
    # where the hardware computes it natively: a CUDA GPU, or a CPU with AVX512-BF16 or AMX). LPIPS, the budget
    # checks and the reported figures stay in fp32; the progress that picks the kept step comes from the bf16
    # pass, and the kept step is measured again in fp32 for the report.
    precision: str = _DEFAULTS.precision
    # Stop when the best target progress has not risen by ``min_improvement`` in ``patience`` steps (0: never).
    patience: int = _DEFAULTS.patience
    min_improvement: float = 0.002
    # The local visibility bounds (see VisibilityBounds; ``budget`` is its LPIPS bound).
    ssim_min: float = _DEFAULTS.ssim_min
    ssim_window_min: float = _DEFAULTS.ssim_window_min
    psnr_min: float = _DEFAULTS.psnr_min
    jnd_strength: float = _DEFAULTS.jnd_strength
    max_change: int = _DEFAULTS.max_change
    # Also optimise the image as a mimic sees it after shrinking it by each of these factors (e.g. (2, 4)): the
    # expected loss over the full size and these sizes. Empty: the full size alone.
    mimic_downscales: tuple[float, ...] = tuple(_DEFAULTS.mimic_downscales)
    # Draw each step's shrink factor around each of mimic_downscales and a random crop offset (see _ShrunkView).
    mimic_jitter: bool = _DEFAULTS.mimic_jitter
    # The full size's weight in the expected loss and in the choice of the kept step, relative to each shrunk
    # view's 1 (0: the shrunk views alone; CloakSettings.full_size_weight). With the latent objective 0 bought
    # about 0.04 more progress at 1/2 and 1/4 and left almost none at full size (docs/protection.md).
    full_size_weight: float = _DEFAULTS.full_size_weight
    # What each shrunk view's loss measures: "latent", the distance of its latents to the target's (the
    # original method's objective), or "decoded", the distance of the decoder's image of those latents to the
    # decoder's image of the target's: what a latent mimic can reproduce. A latent move can hide in directions
    # the decoder ignores; on the prints at 512 px the "latent" cloak moved the latents at 1/4 by 0.25 toward
    # the target but the decoder's image by 0.03 (docs/protection.md, "What the decoder renders"). Needs an
    # encoder with a decoder.
    view_objective: str = _DEFAULTS.view_objective
    # With "decoded-gram": how many of the perceptual network's first layers it compares (CloakSettings).
    view_gram_layers: int = _DEFAULTS.view_gram_layers
    # Each step, Gaussian noise of a standard deviation drawn in [0, view_noise] 8-bit levels is added to every
    # shrunk view before the shrink (CloakSettings.view_noise; 0: none).
    view_noise: float = _DEFAULTS.view_noise
    # Each step's gradient averaged over cells of this many pixels and spread back bilinearly, so that the change
    # is smooth at that scale (CloakSettings.change_cell; 1: off).
    change_cell: int = _DEFAULTS.change_cell
    # Also a view at factor 1, the posted size itself (CloakSettings.full_size_view): the view objective and the
    # surrogate term then work at full size too.
    full_size_view: bool = _DEFAULTS.full_size_view
    # Experimental, not a setting (it measured no gain, docs/protection.md): each shrunk view's share of the loss
    # follows (1 - its progress on the step before) ** view_balance, and the kept step is the one whose least-moved
    # view moved most (0: equal shares, and the mean picks the step). The aim was to spread the effect over the
    # shrinks, one of which a mimic takes, instead of letting it go where it comes easiest; but the views'
    # own progress differs little, so the shares hardly move.
    view_balance: float = 0.0

    @property
    def bounds(self) -> VisibilityBounds:
        return VisibilityBounds.of(self)

    @classmethod
    def from_settings(cls, settings: CloakSettings, size: tuple[int, ...] | None = None) -> OptimizerConfig:
        """The optimiser's config for an image of ``size`` (height, width): with ``settings.mimic_sizes`` the
        shrink factors depend on it (``CloakSettings.view_factors``), so it is then required."""
        if settings.mimic_sizes and size is None:
            raise ValueError("mimic_sizes aims at factors that depend on the image: pass its size")
        return cls(
            budget=settings.budget,
            steps=settings.steps,
            learning_rate=settings.learning_rate,
            penalty_weight=settings.penalty_weight,
            budget_margin=settings.budget_margin,
            patience=settings.patience,
            tile_size=settings.tile_size,
            seed=settings.seed,
            precision=settings.precision,
            ssim_min=settings.ssim_min,
            ssim_window_min=settings.ssim_window_min,
            psnr_min=settings.psnr_min,
            jnd_strength=settings.jnd_strength,
            max_change=settings.max_change,
            mimic_downscales=settings.view_factors(size) if size is not None else tuple(settings.mimic_downscales),
            mimic_jitter=settings.mimic_jitter,
            view_objective=settings.view_objective,
            view_gram_layers=settings.view_gram_layers,
            full_size_weight=settings.full_size_weight,
            view_noise=settings.view_noise,
            change_cell=settings.change_cell,
            full_size_view=settings.full_size_view,
        )


@dataclass
class StepRecord:
    step: int
    lpips: float
    target_progress: float
    seconds: float


@dataclass
class CloakOutcome:
    """The optimised 8-bit image (a float tensor of exact k/255 values) and what it achieves."""

    cloaked: torch.Tensor
    lpips: float
    target_progress: float
    steps_run: int
    history: list[StepRecord] = field(default_factory=list)
    # Every visibility figure of ``cloaked``, measured at full size as reports measure it.
    visibility: VisibilityFigures | None = None
    # The share of the best step's change that was written (1: all of it), and the bounds that forced less.
    scale: float = 1.0
    limited_by: list[str] = field(default_factory=list)


ProgressCallback = Callable[[StepRecord], None]


class _Perceptual:
    """LPIPS of a whole image as the core-area-weighted mean over the encoder's tiles, with the original's
    features computed once."""

    def __init__(self, metric: torch.nn.Module, original: torch.Tensor, tiled: TiledEncoder) -> None:
        self.metric, self.original, self.tiles = metric, original, tiled.tiles
        total = sum(t.core_area for t in self.tiles)
        self.weights = [t.core_area / total for t in self.tiles]
        self.cached = None
        self.whole_cached = None
        if original.shape[-2] * original.shape[-1] <= MAX_CACHED_FEATURE_PIXELS:
            with torch.no_grad():
                self.cached = [self._features(original, i) for i in range(len(self.tiles))]
                if original.shape[-2] * original.shape[-1] <= WHOLE_IMAGE_LPIPS_MAX_PIXELS:
                    self.whole_cached = metric.features(original, normalize=True)

    def _features(self, image: torch.Tensor, index: int) -> list[torch.Tensor]:
        rows, cols = self.tiles[index].crop
        return self.metric.features(image[..., rows, cols], normalize=True)

    def tile_distance(self, image: torch.Tensor, index: int) -> torch.Tensor:
        reference = self.cached[index] if self.cached is not None else self._features(self.original, index)
        return self.metric.distance_from_features(self._features(image, index), reference).sum()

    def distance(self, image: torch.Tensor) -> float:
        """The whole image's LPIPS exactly as reports measure it (the tile-weighted mean differs from it by a few
        percent, which is enough to pick a step that the final check then has to scale down)."""
        if self.whole_cached is None:
            return lpips_distance(self.metric, self.original, image.detach())
        with torch.no_grad():
            features = self.metric.features(image.detach(), normalize=True)
            return float(self.metric.distance_from_features(features, self.whole_cached).sum())

    def penalise(self, image: torch.Tensor, working_budget: float, weight: float) -> float:
        """The whole image's LPIPS; when it is over ``working_budget``, back-propagates
        ``weight * (LPIPS - working_budget)`` into ``image`` tile by tile (the hinge is on the whole image)."""
        value = self.distance(image)
        if value > working_budget:
            for index, tile_weight in enumerate(self.weights):
                (weight * tile_weight * self.tile_distance(image, index)).backward()
        return value


class _Visibility:
    """The visibility bounds during the optimisation: fast full-size figures of each step's 8-bit image (SSIM in
    float32), and the *usage* of the bounds: the largest ratio of a figure to its working bound (1 means the
    tightest bound is exactly used). Each ratio grows like a power of delta's scale, so a scale search on the
    usage lands every bound at once."""

    def __init__(self, original: torch.Tensor, lpips: _Perceptual, bounds: VisibilityBounds, margin: float) -> None:
        self.original, self.lpips, self.bounds, self.margin = original, lpips, bounds, margin
        # The largest mean squared error the PSNR bound allows (PSNR = 10 log10(1 / mse)).
        self.max_mse = 10.0 ** (-bounds.psnr_min / 10.0)
        self.small = min(original.shape[-2:]) < 11  # too small for SSIM: only LPIPS and PSNR apply

    def figures(self, image: torch.Tensor, lpips_value: float | None = None) -> tuple[float, float, float, float]:
        """(lpips, ssim, ssim_window_min, mse) of an 8-bit image."""
        lpips_value = self.lpips.distance(image) if lpips_value is None else lpips_value
        mse = float((image - self.original).pow(2).mean())
        if self.small:
            return lpips_value, 1.0, 1.0, mse
        local = ssim_map(self.original, image, dtype=torch.float32)
        return lpips_value, float(local.mean()), float(window_means(local).min()), mse

    def usage(self, figures: tuple[float, float, float, float]) -> float:
        lpips_value, ssim_value, window_value, mse = figures
        b, m = self.bounds, self.margin
        ratios = [lpips_value / (m * b.lpips), mse / (m * self.max_mse)]
        if b.ssim_min > 0:
            ratios.append((1 - ssim_value) / (m * (1 - b.ssim_min)))
        if b.ssim_window_min > 0:
            ratios.append((1 - window_value) / (m * (1 - b.ssim_window_min)))
        return max(ratios)

    def within(self, figures: tuple[float, float, float, float]) -> bool:
        """Whether the figures meet every (unmargined) bound; the final check is exact, this one is fast."""
        lpips_value, ssim_value, window_value, mse = figures
        b = self.bounds
        return (
            lpips_value <= b.lpips
            and ssim_value >= b.ssim_min
            and window_value >= b.ssim_window_min
            and mse <= self.max_mse
        )


def _shrink(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Shrink by ``factor`` as training pipelines do (antialiased bicubic); differentiable."""
    height, width = image.shape[-2:]
    size = (max(8, round(height / factor)), max(8, round(width / factor)))
    return torch.nn.functional.interpolate(image, size=size, mode="bicubic", antialias=True, align_corners=False)


@dataclass(frozen=True)
class _Resize:
    """One way a mimic may take the image: cut ``offset`` px off the top and left, then shrink by ``factor``."""

    factor: float
    offset: tuple[int, int] = (0, 0)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        top, left = self.offset
        return _shrink(image[..., top:, left:], self.factor)


# The view objectives that compare the decoder's whole image through the perceptual metric's network.
_WHOLE_IMAGE_OBJECTIVES = ("decoded-lpips", "decoded-gram")


class _ShrunkView:
    """The loss of the image as a mimic that trains at a smaller size takes it.

    Fixed (``jitter`` None): shrunk by exactly ``factor``, aligned with the encoder's grid. With ``jitter`` (a
    seeded generator), each step draws the factor log-uniformly within a factor of sqrt(2) around ``factor`` and
    cuts a random offset of up to one latent cell of the shrunk image: a real pipeline shrinks by whatever takes
    the posted size to its training size and crops anywhere, and a cloak optimised for one exact, aligned resize
    keeps about half its effect at the others (docs/protection.md).

    ``objective`` (see ``OptimizerConfig.view_objective``) says what is compared with the target: the latents,
    or the decoder's image of them; ``gram_layers``, with "decoded-gram", how many of the perceptual network's
    first layers give the style statistics (None: all)."""

    def __init__(
        self,
        encoder: LatentEncoder,
        original: torch.Tensor,
        target: torch.Tensor,
        factor: float,
        tile_size: int,
        jitter: torch.Generator | None = None,
        objective: str = "latent",
        noise: float = 0.0,
        noise_generator: torch.Generator | None = None,
        perceptual: torch.nn.Module | None = None,
        denoiser: DenoiserTerm | None = None,
        gram_layers: int | None = None,
    ) -> None:
        self.encoder, self.original, self.target = encoder, original, target
        self.denoiser = denoiser  # a surrogate diffusion model's term on this view's latents (experimental)
        self.factor, self.tile_size, self.jitter = factor, tile_size, jitter
        if noise > 0 and noise_generator is None:
            raise ValueError("a noisy view needs its seeded generator")
        self.noise, self.noise_generator = noise, noise_generator
        self.objective, self.gram_layers = objective, gram_layers
        self.decoder = TiledDecoder(encoder) if objective.startswith("decoded") else None
        # "decoded-lpips": the decoder's images compared by LPIPS instead of pixel by pixel; "decoded-gram": by
        # the Gram statistics of the perceptual metric's features (experimental, both).
        self.perceptual = perceptual if objective in _WHOLE_IMAGE_OBJECTIVES else None
        if objective in _WHOLE_IMAGE_OBJECTIVES and perceptual is None:
            raise ValueError(f"the {objective} objective needs the perceptual metric")
        self._fixed = self._prepare(_Resize(float(factor)))
        self._now = self._fixed

    def _seen(self, latents: torch.Tensor) -> torch.Tensor:
        """What the loss compares: the latents themselves, the decoder's image of them (in tiles: memory
        stays bounded on large images), or that image's Gram statistics (decoded whole)."""
        if self.objective == "decoded-gram":
            assert self.perceptual is not None
            return perceptual_grams(self.perceptual, self._decode_whole(latents), self.gram_layers)
        return self.decoder.decode(latents) if self.decoder is not None else latents

    def _decode_whole(self, latents: torch.Tensor) -> torch.Tensor:
        """The decoder's image in one piece, for the objectives that compare whole images."""
        assert self.decoder is not None
        if not self.decoder.single_tile(latents):
            # LPIPS and Gram statistics compare whole images: these experimental objectives do not decode in tiles.
            raise ValueError(
                f"view_objective {self.objective!r} decodes each shrunk view whole, up to "
                f"{self.decoder.tile_latent * self.encoder.downscale} px a side, and this image's are "
                "larger (the 'decoded' objective decodes them in tiles)"
            )
        return self.encoder.decode(latents)

    def _distance_sq(self, latents: torch.Tensor, target_seen: torch.Tensor) -> torch.Tensor:
        """``||seen(latents) - target_seen||^2``, differentiable; the decoder's tiles back-propagate one by one.
        With "decoded-lpips", the squared LPIPS of the whole decoded image (so that the progress,
        1 - sqrt(distance / start), is 1 - LPIPS / LPIPS at the start); with "decoded-gram", the squared
        distance between the Gram statistics of the whole decoded images."""
        if self.objective == "decoded-gram":
            return (self._seen(latents) - target_seen).pow(2).sum()
        if self.perceptual is not None:
            decoded = self._decode_whole(latents)
            return self.perceptual(decoded, target_seen, normalize=True).sum().pow(2)
        if self.decoder is not None:
            return self.decoder.squared_distance(latents, target_seen)
        return (latents - target_seen).pow(2).sum()

    def _prepare(self, resize: _Resize) -> tuple[_Resize, TiledEncoder, torch.Tensor, float]:
        small = resize(self.original)
        tiled = TiledEncoder(self.encoder, small.shape[-2], small.shape[-1], self.tile_size)
        with torch.no_grad():
            target_seen = self._seen(tiled.encode(resize(self.target)))
            start_sq = float(self._distance_sq(tiled.encode(small), target_seen))
        return resize, tiled, target_seen, start_sq

    def draw(self) -> None:
        """The resize of the next step: a new random one with jitter, else the fixed one."""
        if self.jitter is None:
            return
        u = float(torch.rand((), generator=self.jitter)) - 0.5
        factor = self.factor * 2.0**u
        cell = max(1, round(self.encoder.downscale * factor))  # one latent cell of the shrunk image, in full px
        top, left = (int(v) for v in torch.randint(0, cell, (2,), generator=self.jitter))
        self._now = self._prepare(_Resize(factor, (top, left)))

    def backward(self, image: torch.Tensor, weight: float) -> float:
        """Back-propagate ``weight`` times the normalised distance into ``image``; returns the progress."""
        resize, tiled, target_seen, start_sq = self._now
        if start_sq <= 0:
            return 0.0
        small = resize(image + self._noise(image))
        leaf = small.detach().requires_grad_(True)  # the tiled encoder walks its tiles from a leaf
        distances: list[float] = []

        def view_loss(latents: torch.Tensor) -> torch.Tensor:
            distance = self._distance_sq(latents, target_seen) / start_sq
            distances.append(float(distance.detach()))
            if self.denoiser is None or self.denoiser.weight <= 0:
                return weight * distance
            return weight * (distance + self.denoiser.loss(latents, (self.factor,)))

        tiled.backward(leaf, view_loss)
        assert leaf.grad is not None
        small.backward(leaf.grad)
        return 1.0 - (max(0.0, distances[0])) ** 0.5

    def _noise(self, image: torch.Tensor) -> torch.Tensor | float:
        """This step's noise (a constant, not a function of the image: the gradient passes straight through)."""
        if self.noise <= 0:
            return 0.0
        assert self.noise_generator is not None
        sigma = float(torch.rand((), generator=self.noise_generator)) * self.noise / 255.0
        noise = torch.randn(image.shape, generator=self.noise_generator) * sigma
        return noise.to(device=image.device, dtype=image.dtype)

    def progress(self, image: torch.Tensor) -> float:
        """The progress at the fixed resize (a stable figure for the last, measuring pass)."""
        resize, tiled, target_seen, start_sq = self._fixed
        with torch.no_grad():
            distance_sq = float(self._distance_sq(tiled.encode(resize(image)), target_seen))
        return 1.0 - (distance_sq / start_sq) ** 0.5 if start_sq > 0 else 0.0


def _view_factors(config: OptimizerConfig, size: tuple[int, ...]) -> list[float]:
    """The factors of the optimiser's views: 1 first with ``full_size_view`` (the posted size, through the same
    objective and term as the shrunk views), then the shrunk sizes :func:`mimic_view_factors` keeps."""
    return ([1] if config.full_size_view else []) + mimic_view_factors(config.mimic_downscales, size)


def optimize_cloak(
    original: torch.Tensor,
    target: torch.Tensor,
    encoder: LatentEncoder,
    perceptual: torch.nn.Module,
    config: OptimizerConfig,
    progress: ProgressCallback | None = None,
    denoiser: DenoiserTerm | None = None,
) -> CloakOutcome:
    """Cloak ``original`` (1x3xHxW in [0, 1]) towards ``target`` (same shape) within the visibility bounds.
    ``denoiser`` (experimental) adds a surrogate diffusion model's term to every shrunk view's loss
    (:mod:`stylecloak.models.surrogate`); the kept step is then the latest that meets every bound, since the
    target progress, which picks it otherwise, does not see that term.

    Raises :class:`stylecloak.visibility.VisibilityBoundError` when no cloak worth writing meets the bounds."""
    if original.shape != target.shape:
        raise ValueError(f"target shape {tuple(target.shape)} differs from image shape {tuple(original.shape)}")
    if config.full_size_weight < 0:
        raise ValueError(f"full_size_weight must be >= 0, got {config.full_size_weight}")
    if config.view_noise < 0:
        raise ValueError(f"view_noise must be >= 0 8-bit levels, got {config.view_noise}")
    if config.change_cell < 1:
        raise ValueError(f"change_cell must be >= 1 pixel, got {config.change_cell}")
    if config.view_balance < 0:
        raise ValueError(f"view_balance must be >= 0, got {config.view_balance}")
    check_view_objective(config.view_objective)
    if config.view_objective.startswith("decoded") and not encoder.can_decode:
        raise ValueError(
            f"view_objective {config.view_objective!r} needs an encoder with a decoder; {encoder.name!r} has none"
        )
    original = quantize_8bit(original)  # a saved file holds 8-bit values; start from exactly those
    bounds = config.bounds
    tiled = TiledEncoder(encoder, original.shape[-2], original.shape[-1], config.tile_size)
    lpips = _Perceptual(perceptual, original, tiled)
    visibility = _Visibility(original, lpips, bounds, config.budget_margin)
    # The per-pixel box (whole 8-bit levels): where the JND model says a change would be seen, it cannot be made.
    box = allowed_change(original, bounds)
    target_latents = tiled.encode(target)
    start_distance_sq = float((tiled.encode(original) - target_latents).pow(2).sum())
    if start_distance_sq <= 0:
        raise ValueError("the target's latents equal the image's: pick another target style")
    working_budget = config.budget * config.budget_margin
    encoder_precision = autocast_context(config.precision, original.device)
    # Expectation over the mimic's resizes: each size weighs the same (the full size full_size_weight), and the
    # kept step's progress is their weighted mean.
    views = [
        _ShrunkView(
            encoder,
            original,
            target,
            f,
            config.tile_size,
            _jitter_generator(config, i),
            config.view_objective,
            config.view_noise,
            _noise_generator(config, i),
            perceptual,
            denoiser,
            config.view_gram_layers,
        )
        for i, f in enumerate(_view_factors(config, original.shape[-2:]))
    ]
    if denoiser is not None:
        if not views:
            raise ValueError(
                "the denoiser term works on the shrunk views: it needs a mimic_downscales factor, or a mimic_sizes "
                "size smaller than the image, that leaves both sides at least 32 px (or full_size_view)"
            )
        denoiser.reset()  # every image from the same draws
    full_weight = config.full_size_weight if views else 1.0
    total_weight = full_weight + len(views)
    share, full_share = 1.0 / total_weight, full_weight / total_weight
    view_shares = [1.0] * len(views)  # each view's share relative to an even one (view_balance moves them)

    def latent_loss(latents: torch.Tensor) -> torch.Tensor:
        return (latents - target_latents).pow(2).sum() / start_distance_sq * full_share

    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    # A tiny seeded start (below one 8-bit level) breaks the symmetry of delta = 0, where LPIPS has no gradient.
    delta = ((torch.rand(original.shape, generator=generator) - 0.5) / 255).to(original.device).requires_grad_(True)
    optimizer = _Adam(delta)

    best_delta, best_progress, best_step = torch.zeros_like(original), 0.0, 0
    unscaled = delta.detach().clone()
    history: list[StepRecord] = []
    started = time.perf_counter()
    last_step = config.steps
    for step in range(config.steps + 1):  # the extra pass measures the last update
        training = step < last_step
        # The 8-bit image is a leaf: gradients w.r.t. it pass straight through the rounding to delta.
        image = quantize_8bit(original + delta.detach()).requires_grad_(training)
        if training:
            for view in views:
                view.draw()
            with encoder_precision:
                if full_share > 0:
                    distance_sq = float(tiled.backward(image, latent_loss)) * start_distance_sq / full_share
                else:  # the full size is only measured
                    distance_sq = float((tiled.encode(image.detach()) - target_latents).pow(2).sum())
                view_progress = [view.backward(image, share * w) for view, w in zip(views, view_shares)]
            if config.view_balance > 0:
                view_shares = balanced_view_shares(view_progress, config.view_balance)
            lpips_value = lpips.penalise(image, working_budget, config.penalty_weight)
        else:
            distance_sq = float((tiled.encode(image) - target_latents).pow(2).sum())
            view_progress = [view.progress(image) for view in views]
            lpips_value = lpips.distance(image)
        figures = visibility.figures(image.detach(), lpips_value)
        progress_now = 1.0 - (distance_sq / start_distance_sq) ** 0.5
        # The step kept is the best on average over the sizes a mimic may train at (with view_balance, the best at
        # the least-moved size).
        if views:
            views_figure = min(view_progress) * len(views) if config.view_balance > 0 else sum(view_progress)
            progress_now = (full_weight * progress_now + views_figure) / total_weight
        if denoiser is not None and visibility.within(figures) and progress_now > 0:
            # The denoiser's term is not in the progress figure, which it may lower: keep the latest step
            # within the bounds (each one resets the patience, which then stops only a run whose steps fail them).
            best_step, best_progress, best_delta = step, progress_now, (image.detach() - original)
        elif visibility.within(figures) and progress_now > best_progress:
            if progress_now > best_progress + config.min_improvement:
                best_step = step
            best_progress, best_delta = progress_now, (image.detach() - original)
        record = StepRecord(step, lpips_value, progress_now, time.perf_counter() - started)
        history.append(record)
        if progress is not None:
            progress(record)
        if not training:
            break
        assert image.grad is not None
        optimizer.step(
            smooth_over_cells(image.grad, config.change_cell), _cosine(config.learning_rate, step, config.steps)
        )
        with torch.no_grad():
            delta.copy_(_clamp_to_box(original, delta, box))
            unscaled = delta.clone()  # the step's full change, for the final check if no step met the bounds
            if config.rescale_to_budget:
                _project_onto_bounds(original, delta, box, visibility)
        if config.patience and step - best_step >= config.patience:
            last_step = step + 1  # one more pass measures this update, then stop

    if best_progress <= 0:
        # No step met every bound: the final check scales the last step down, or says which bound it cannot meet,
        # rather than write the original as if it were a cloak.
        best_delta = quantize_8bit(original + unscaled) - original
    enforced = enforce_bounds(original, best_delta, perceptual, bounds)
    final_distance_sq = float((tiled.encode(enforced.image) - target_latents).pow(2).sum())
    return CloakOutcome(
        cloaked=enforced.image,
        lpips=enforced.figures.lpips,
        target_progress=1.0 - (final_distance_sq / start_distance_sq) ** 0.5,
        steps_run=last_step,
        history=history,
        visibility=enforced.figures,
        scale=enforced.scale,
        limited_by=enforced.limited_by,
    )


def balanced_view_shares(progress: list[float], power: float) -> list[float]:
    """Each shrunk view's share of the views' loss, relative to an even share (they average 1): proportional to
    ``(1 - progress) ** power``, so that the views the cloak has moved least weigh most. A view past its target
    (progress 1 or more) keeps a small share rather than none, so that it is not undone."""
    if power < 0:
        raise ValueError(f"the balance's power must be >= 0, got {power}")
    remaining = [max(1.0 - p, 1e-3) ** power for p in progress]
    total = sum(remaining)
    return [len(progress) * r / total for r in remaining]


def _jitter_generator(config: OptimizerConfig, index: int) -> torch.Generator | None:
    """A seeded generator of view ``index``'s random resizes, or None for fixed ones."""
    if not config.mimic_jitter:
        return None
    return torch.Generator(device="cpu").manual_seed(config.seed * 1_000 + index + 1)


def _noise_generator(config: OptimizerConfig, index: int) -> torch.Generator | None:
    """A seeded generator of view ``index``'s noise, or None without noise (its own stream: turning the
    noise on leaves the resizes the jitter draws unchanged)."""
    if config.view_noise <= 0:
        return None
    return torch.Generator(device="cpu").manual_seed(config.seed * 1_000 + 500 + index + 1)


def smooth_over_cells(gradient: torch.Tensor, cell: int) -> torch.Tensor:
    """``gradient`` (1xCxHxW) averaged over cells of ``cell`` pixels a side and spread back bilinearly: a step
    along it changes the image only in detail coarser than about ``cell`` pixels (1: unchanged)."""
    if cell <= 1:
        return gradient
    height, width = gradient.shape[-2:]
    coarse = torch.nn.functional.interpolate(
        gradient, size=(math.ceil(height / cell), math.ceil(width / cell)), mode="area"
    )
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def _clamp_to_box(original: torch.Tensor, delta: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """delta within the per-pixel box and the image's [0, 1] range."""
    delta = torch.maximum(torch.minimum(delta, box), -box)
    return torch.clamp(original + delta, 0, 1) - original


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: full fp32)."""
    if precision == "fp32":
        return None
    if precision not in ("auto", "bf16"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    # On a CPU without native bf16 (most laptops: AVX2 only) autocast would be slower than fp32.
    return torch.bfloat16 if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def autocast_context(precision: str, device: torch.device) -> Any:
    dtype = autocast_dtype(precision, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


class _Adam:
    """Adam on one tensor, written out: a few lines, deterministic, and it spares the import of torch's
    compiler stack that ``torch.optim`` triggers (seconds on a laptop)."""

    def __init__(self, parameter: torch.Tensor, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.parameter, self.betas, self.eps, self.steps = parameter, betas, eps, 0
        self.mean = torch.zeros_like(parameter)
        self.variance = torch.zeros_like(parameter)

    @torch.no_grad()
    def step(self, gradient: torch.Tensor, learning_rate: float) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        self.mean.mul_(beta1).add_(gradient, alpha=1 - beta1)
        self.variance.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        mean_hat = self.mean / (1 - beta1**self.steps)
        variance_hat = self.variance / (1 - beta2**self.steps)
        self.parameter.sub_(learning_rate * mean_hat / (variance_hat.sqrt() + self.eps))


def _cosine(learning_rate: float, step: int, steps: int, floor: float = 0.1) -> float:
    """Cosine decay from ``learning_rate`` to ``floor * learning_rate`` over ``steps``."""
    fraction = step / max(1, steps)
    return learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * fraction)))


def _project_onto_bounds(
    original: torch.Tensor, delta: torch.Tensor, box: torch.Tensor, visibility: _Visibility, tries: int = 4
) -> None:
    """Scale delta in place (within its box) so that the usage of the tightest bound lands in ``[0.95, 1]``.

    Each figure grows about as ``|delta|^k`` with k between 1 and 2 depending on the image, so the scale is found
    by a secant search in log-log space, starting from k = 2. If no try lands in the band, the largest scale seen
    within the bounds is used (or the smallest tried, and the best-step record guards the result).
    """

    def usage_at(candidate: torch.Tensor) -> float:
        return visibility.usage(visibility.figures(quantize_8bit(original + candidate)))

    value = usage_at(delta)
    if value <= 0 or 0.95 <= value <= 1.0:
        return
    base = delta.clone()
    aim, exponent = 0.975, 2.0
    scale, within = 1.0, (1.0 if value <= 1.0 else None)
    points = [(0.0, math.log(value))]  # (log scale, log usage)
    for _ in range(tries):
        log_scale = points[-1][0] + (math.log(aim) - points[-1][1]) / exponent
        scale = math.exp(min(log_scale, math.log(4.0)))  # a far-off step is mostly noise: grow at most 4x
        delta.copy_(_clamp_to_box(original, scale * base, box))
        value = usage_at(delta)
        if value <= 1.0:
            within = max(within or 0.0, scale)
            if value >= 0.95:
                return
        if value <= 0:
            break
        points.append((math.log(scale), math.log(value)))
        (s0, v0), (s1, v1) = points[-2], points[-1]
        if abs(s1 - s0) > 1e-6:
            exponent = min(4.0, max(0.5, (v1 - v0) / (s1 - s0)))
    final = within if within is not None else scale
    delta.copy_(_clamp_to_box(original, final * base, box))


def enforce_budget(
    original: torch.Tensor, delta: torch.Tensor, metric: torch.nn.Module, budget: float
) -> tuple[torch.Tensor, float]:
    """The 8-bit image of ``original + s * delta`` with the largest ``s`` in [0, 1] that meets the budget,
    measured on the whole image exactly as reports measure it.

    ``delta`` comes from a step whose 8-bit image met the budget tile by tile, so ``s = 1`` passes unless the
    whole-image measurement differs; the bisection is the guarantee.
    """
    cloaked = quantize_8bit(original + delta)
    value = lpips_distance(metric, original, cloaked)
    if value <= budget:
        return cloaked, value
    low, high, best = 0.0, 1.0, (original.clone(), 0.0)
    for _ in range(12):
        mid = (low + high) / 2
        candidate = quantize_8bit(original + mid * delta)
        candidate_value = lpips_distance(metric, original, candidate)
        if candidate_value <= budget:
            low, best = mid, (candidate, candidate_value)
        else:
            high = mid
    return best
