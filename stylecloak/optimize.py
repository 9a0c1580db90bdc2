"""The cloak optimiser.

    minimise over delta:  ||E(x + delta) - E(t)||^2 / ||E(x) - E(t)||^2  +  alpha * max(LPIPS(x + delta, x) - p', 0)

with Adam on one full-resolution delta. Three choices make it trustworthy for the file that is actually saved:

- 8-bit aware: every forward pass sees the 8-bit image ``round(255 * (x + delta)) / 255`` and its gradient is
  passed straight through to delta. The loss and LPIPS measured at each step are those of the file that would be
  written, so "within budget" is checked on what is saved, not on a float tensor.
- Budget held: the working budget is ``p' = budget_margin * p``. After each update, delta is scaled back if its
  8-bit image is over ``p'`` (a cheap LPIPS-only check), and the best step whose 8-bit image met ``p`` is kept.
- Any size, bounded memory: the encoder runs tile by tile (:mod:`stylecloak.models.tiled`) and all tiles'
  gradients accumulate into the one delta, so the perturbation is never resized and tiles leave no seam.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .metrics import lpips_distance
from .models.encoders import LatentEncoder
from .models.tiled import TiledEncoder

# Above this many tiles the original's LPIPS features are recomputed each step instead of kept in memory.
MAX_CACHED_FEATURE_TILES = 16


@dataclass(frozen=True)
class OptimizerConfig:
    budget: float = 0.05
    steps: int = 40
    learning_rate: float = 0.008
    penalty_weight: float = 50.0
    budget_margin: float = 0.9
    tile_size: int = 512
    seed: int = 0
    # Scale delta back onto the working budget after each update (see the module docstring).
    rescale_to_budget: bool = True


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


ProgressCallback = Callable[[StepRecord], None]


def quantize_8bit(image: torch.Tensor) -> torch.Tensor:
    return torch.round(image.clamp(0, 1) * 255) / 255


class _Perceptual:
    """LPIPS of a whole image as the core-area-weighted mean over the encoder's tiles, with the original's
    features computed once."""

    def __init__(self, metric: torch.nn.Module, original: torch.Tensor, tiled: TiledEncoder) -> None:
        self.metric, self.original, self.tiles = metric, original, tiled.tiles
        total = sum(t.core_area for t in self.tiles)
        self.weights = [t.core_area / total for t in self.tiles]
        self.cached = None
        if len(self.tiles) <= MAX_CACHED_FEATURE_TILES:
            with torch.no_grad():
                self.cached = [self._features(original, i) for i in range(len(self.tiles))]

    def _features(self, image: torch.Tensor, index: int) -> list[torch.Tensor]:
        rows, cols = self.tiles[index].crop
        return self.metric.features(image[..., rows, cols], normalize=True)

    def tile_distance(self, image: torch.Tensor, index: int) -> torch.Tensor:
        reference = self.cached[index] if self.cached is not None else self._features(self.original, index)
        return self.metric.distance_from_features(self._features(image, index), reference).sum()

    def distance(self, image: torch.Tensor) -> float:
        with torch.no_grad():
            return sum(w * float(self.tile_distance(image, i)) for i, w in enumerate(self.weights))


def optimize_cloak(
    original: torch.Tensor,
    target: torch.Tensor,
    encoder: LatentEncoder,
    perceptual: torch.nn.Module,
    config: OptimizerConfig,
    progress: ProgressCallback | None = None,
) -> CloakOutcome:
    """Cloak ``original`` (1x3xHxW in [0, 1]) towards ``target`` (same shape) under an LPIPS budget."""
    if original.shape != target.shape:
        raise ValueError(f"target shape {tuple(target.shape)} differs from image shape {tuple(original.shape)}")
    original = quantize_8bit(original)  # a saved file holds 8-bit values; start from exactly those
    tiled = TiledEncoder(encoder, original.shape[-2], original.shape[-1], config.tile_size)
    lpips = _Perceptual(perceptual, original, tiled)
    target_latents = tiled.encode(target)
    start_distance_sq = float((tiled.encode(original) - target_latents).pow(2).sum())
    if start_distance_sq <= 0:
        raise ValueError("the target's latents equal the image's: pick another target style")
    working_budget = config.budget * config.budget_margin

    def latent_loss(latents: torch.Tensor) -> torch.Tensor:
        return (latents - target_latents).pow(2).sum() / start_distance_sq

    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    # A tiny seeded start (below one 8-bit level) breaks the symmetry of delta = 0, where LPIPS has no gradient.
    delta = ((torch.rand(original.shape, generator=generator) - 0.5) / 255).to(original.device).requires_grad_(True)
    optimizer = torch.optim.Adam([delta], lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.steps), eta_min=config.learning_rate * 0.1)

    best_delta, best_progress = torch.zeros_like(original), 0.0
    history: list[StepRecord] = []
    started = time.perf_counter()
    for step in range(config.steps + 1):  # the extra pass measures the last update
        training = step < config.steps
        # The 8-bit image is a leaf: gradients w.r.t. it pass straight through the rounding to delta.
        image = quantize_8bit(original + delta.detach()).requires_grad_(training)
        if training:
            distance_sq = float(tiled.backward(image, latent_loss)) * start_distance_sq
        else:
            distance_sq = float((tiled.encode(image) - target_latents).pow(2).sum())
        lpips_value = 0.0
        for index, weight in enumerate(lpips.weights):
            with torch.set_grad_enabled(training):
                tile_lpips = lpips.tile_distance(image, index)
            if training:
                (config.penalty_weight * weight * torch.relu(tile_lpips - working_budget)).backward()
            lpips_value += weight * float(tile_lpips.detach())
        progress_now = 1.0 - (distance_sq / start_distance_sq) ** 0.5
        if lpips_value <= config.budget and progress_now > best_progress:
            best_progress, best_delta = progress_now, (image.detach() - original)
        record = StepRecord(step, lpips_value, progress_now, time.perf_counter() - started)
        history.append(record)
        if progress is not None:
            progress(record)
        if training:
            delta.grad = image.grad
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                delta.copy_(torch.clamp(original + delta, 0, 1) - original)
                if config.rescale_to_budget:
                    _rescale_onto_budget(original, delta, lpips, working_budget)

    cloaked, lpips_value = _enforce_budget(original, best_delta, perceptual, config.budget)
    final_distance_sq = float((tiled.encode(cloaked) - target_latents).pow(2).sum())
    return CloakOutcome(
        cloaked=cloaked,
        lpips=lpips_value,
        target_progress=1.0 - (final_distance_sq / start_distance_sq) ** 0.5,
        steps_run=config.steps,
        history=history,
    )


def _rescale_onto_budget(original: torch.Tensor, delta: torch.Tensor, lpips: _Perceptual, budget: float, tries: int = 3) -> None:
    """Shrink delta in place until its 8-bit image is within ``budget`` (LPIPS grows about as |delta|^1.3)."""
    for _ in range(tries):
        value = lpips.distance(quantize_8bit(original + delta))
        if value <= budget:
            return
        delta.mul_((budget / value) ** 0.8)


def _enforce_budget(original: torch.Tensor, delta: torch.Tensor, metric: torch.nn.Module, budget: float) -> tuple[torch.Tensor, float]:
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
