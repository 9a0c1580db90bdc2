"""The cloak optimiser.

    minimise over delta:  ||E(x + delta) - E(t)||^2 / ||E(x) - E(t)||^2  +  alpha * max(LPIPS(x + delta, x) - p', 0)

with Adam on one full-resolution delta. Three choices make it trustworthy for the file that is actually saved:

- 8-bit aware: every forward pass sees the 8-bit image ``round(255 * (x + delta)) / 255`` and its gradient is
  passed straight through to delta. The loss and LPIPS measured at each step are those of the file that would be
  written, so "within budget" is checked on what is saved, not on a float tensor.
- Budget used and held: the working budget is ``p' = budget_margin * p``. After each update, delta is scaled
  onto ``p'`` (a projection onto the LPIPS sphere, with cheap LPIPS-only checks): down when its 8-bit image is
  over, and up when it is well under, because the encoder moves further the more of the budget is spent.
  The best step whose 8-bit image met ``p`` is kept.
- Any size, bounded memory: the encoder runs tile by tile (:mod:`stylecloak.models.tiled`) and all tiles'
  gradients accumulate into the one delta, so the perturbation is never resized and tiles leave no seam.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .metrics import lpips_distance
from .models.encoders import LatentEncoder
from .models.tiled import TiledEncoder
from .settings import CloakSettings

# Above this many pixels the original's LPIPS features are recomputed each step instead of kept (~40 MB per MP).
MAX_CACHED_FEATURE_PIXELS = 16_000_000


@dataclass(frozen=True)
class OptimizerConfig:
    budget: float = 0.05
    steps: int = 40
    learning_rate: float = 0.008
    penalty_weight: float = 50.0
    budget_margin: float = 0.9
    tile_size: int = 512
    seed: int = 0
    # Scale delta onto the working budget after each update (see the module docstring).
    rescale_to_budget: bool = True
    # The encoder's forward and backward in the optimisation steps: "bf16" (autocast), "fp32", or "auto" (bf16
    # where the hardware computes it natively: a CUDA GPU, or a CPU with AVX512-BF16 or AMX). LPIPS, the budget
    # checks and the reported figures stay in fp32; the progress that picks the kept step comes from the bf16
    # pass, and the kept step is measured again in fp32 for the report.
    precision: str = "auto"
    # Stop when the best target progress has not risen by ``min_improvement`` in ``patience`` steps (0: never).
    patience: int = 0
    min_improvement: float = 0.002

    @classmethod
    def from_settings(cls, settings: CloakSettings) -> "OptimizerConfig":
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
        if original.shape[-2] * original.shape[-1] <= MAX_CACHED_FEATURE_PIXELS:
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
    encoder_precision = autocast_context(config.precision, original.device)

    def latent_loss(latents: torch.Tensor) -> torch.Tensor:
        return (latents - target_latents).pow(2).sum() / start_distance_sq

    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    # A tiny seeded start (below one 8-bit level) breaks the symmetry of delta = 0, where LPIPS has no gradient.
    delta = ((torch.rand(original.shape, generator=generator) - 0.5) / 255).to(original.device).requires_grad_(True)
    optimizer = _Adam(delta)

    best_delta, best_progress, best_step = torch.zeros_like(original), 0.0, 0
    history: list[StepRecord] = []
    started = time.perf_counter()
    last_step = config.steps
    for step in range(config.steps + 1):  # the extra pass measures the last update
        training = step < last_step
        # The 8-bit image is a leaf: gradients w.r.t. it pass straight through the rounding to delta.
        image = quantize_8bit(original + delta.detach()).requires_grad_(training)
        if training:
            with encoder_precision:
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
        optimizer.step(image.grad, _cosine(config.learning_rate, step, config.steps))
        with torch.no_grad():
            delta.copy_(torch.clamp(original + delta, 0, 1) - original)
            if config.rescale_to_budget:
                _project_onto_budget(original, delta, lpips, working_budget)
        if config.patience and step - best_step >= config.patience:
            last_step = step + 1  # one more pass measures this update, then stop

    cloaked, lpips_value = enforce_budget(original, best_delta, perceptual, config.budget)
    final_distance_sq = float((tiled.encode(cloaked) - target_latents).pow(2).sum())
    return CloakOutcome(
        cloaked=cloaked,
        lpips=lpips_value,
        target_progress=1.0 - (final_distance_sq / start_distance_sq) ** 0.5,
        steps_run=last_step,
        history=history,
    )


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


def _project_onto_budget(original: torch.Tensor, delta: torch.Tensor, lpips: _Perceptual, budget: float, tries: int = 4) -> None:
    """Scale delta in place so that LPIPS of its 8-bit image lands in ``[0.95, 1] * budget``.

    LPIPS grows about as ``|delta|^k`` with k between 1 and 2 depending on the image, so the scale is found by a
    secant search in log-log space, starting from k = 2. If no try lands in the band, the largest scale seen
    within the budget is used (or the smallest tried, and the best-step record guards the result).
    """
    value = lpips.distance(quantize_8bit(original + delta))
    if value <= 0 or 0.95 * budget <= value <= budget:
        return
    base = delta.clone()
    aim, exponent = 0.975 * budget, 2.0
    scale, within = 1.0, (1.0 if value <= budget else None)
    points = [(0.0, math.log(value))]  # (log scale, log lpips)
    for _ in range(tries):
        log_scale = points[-1][0] + (math.log(aim) - points[-1][1]) / exponent
        scale = math.exp(min(log_scale, math.log(4.0)))  # a far-off step is mostly noise: grow at most 4x
        delta.copy_(torch.clamp(original + scale * base, 0, 1) - original)
        value = lpips.distance(quantize_8bit(original + delta))
        if value <= budget:
            within = max(within or 0.0, scale)
            if value >= 0.95 * budget:
                return
        if value <= 0:
            break
        points.append((math.log(scale), math.log(value)))
        (s0, v0), (s1, v1) = points[-2], points[-1]
        if abs(s1 - s0) > 1e-6:
            exponent = min(4.0, max(0.5, (v1 - v0) / (s1 - s0)))
    final = within if within is not None else scale
    delta.copy_(torch.clamp(original + final * base, 0, 1) - original)


def enforce_budget(original: torch.Tensor, delta: torch.Tensor, metric: torch.nn.Module, budget: float) -> tuple[torch.Tensor, float]:
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
