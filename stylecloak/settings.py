"""Presets: what ``--intensity`` and ``--quality`` mean, and the full set of cloak settings.

Intensity is the perceptual budget p (the LPIPS distance the saved image may have from the original).
Quality is the effort: optimisation steps and schedule. Every field can be set directly in the API.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Intensity = Literal["low", "medium", "high"]
Quality = Literal["fast", "default", "max"]

# The paper tests p = 0.03 to 0.1, with 0.05 and 0.07 as its defaults.
INTENSITY_BUDGETS: dict[str, float] = {"low": 0.03, "medium": 0.05, "high": 0.08}


@dataclass(frozen=True)
class QualityPreset:
    steps: int
    learning_rate: float
    description: str


QUALITY_PRESETS: dict[str, QualityPreset] = {
    "fast": QualityPreset(steps=8, learning_rate=0.03, description="under half the default effort, for previews"),
    "default": QualityPreset(steps=20, learning_rate=0.02, description="balanced: about a minute for 512 px on a 2-core CPU"),
    "max": QualityPreset(steps=60, learning_rate=0.01, description="three times the default effort, for the strongest cloak"),
}


@dataclass(frozen=True)
class CloakSettings:
    """Everything that decides a cloak. Build it with :meth:`from_presets` or field by field."""

    budget: float = INTENSITY_BUDGETS["medium"]
    steps: int = QUALITY_PRESETS["default"].steps
    learning_rate: float = QUALITY_PRESETS["default"].learning_rate
    # Weight of the hinge penalty on LPIPS above the working budget (alpha in the paper's objective).
    penalty_weight: float = 50.0
    # The optimiser aims a little under the budget, so that tile-wise LPIPS never puts the whole image over it.
    budget_margin: float = 0.95
    # Stop early when the target progress has not risen for this many steps (0: run every step).
    patience: int = 5
    target: str = "mosaic"
    encoder: str = "taef2"
    lpips_net: str = "alex"
    tile_size: int = 512
    seed: int = 0
    device: str = "auto"
    # The encoder's arithmetic in the optimisation steps: auto (bf16 where the hardware has it natively), bf16, fp32.
    precision: str = "auto"
    intensity: str | None = "medium"
    quality: str | None = "default"

    @classmethod
    def from_presets(cls, intensity: Intensity = "medium", quality: Quality = "default", **overrides: Any) -> "CloakSettings":
        if intensity not in INTENSITY_BUDGETS:
            raise ValueError(f"unknown intensity {intensity!r}; choose one of {', '.join(INTENSITY_BUDGETS)}")
        if quality not in QUALITY_PRESETS:
            raise ValueError(f"unknown quality {quality!r}; choose one of {', '.join(QUALITY_PRESETS)}")
        preset = QUALITY_PRESETS[quality]
        settings = cls(
            budget=INTENSITY_BUDGETS[intensity],
            steps=preset.steps,
            learning_rate=preset.learning_rate,
            intensity=intensity,
            quality=quality,
        )
        return replace(settings, **overrides) if overrides else settings

    def __post_init__(self) -> None:
        if not 0 < self.budget < 1:
            raise ValueError(f"budget must be an LPIPS distance in (0, 1), got {self.budget}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.tile_size < 64 or self.tile_size % 8:
            raise ValueError(f"tile_size must be a multiple of 8 and at least 64, got {self.tile_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
