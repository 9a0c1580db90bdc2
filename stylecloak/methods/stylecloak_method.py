"""stylecloak's own method behind the optimiser interface: :func:`stylecloak.optimize.optimize_cloak` with the
settings of an intensity and quality preset."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..models.encoders import LatentEncoder
from ..optimize import OptimizerConfig, optimize_cloak
from ..settings import CloakSettings
from .base import MethodResult


@dataclass
class StylecloakMethod:
    settings: CloakSettings = field(default_factory=CloakSettings)
    name: str = "stylecloak"

    @property
    def description(self) -> str:
        s = self.settings
        return f"stylecloak: Adam under an LPIPS budget of {s.budget}, {s.steps} steps at most ({s.quality} quality)"

    def cloak(
        self, original: torch.Tensor, style_target: torch.Tensor, encoder: LatentEncoder, perceptual: torch.nn.Module
    ) -> MethodResult:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.settings.seed)
            outcome = optimize_cloak(
                original,
                style_target,
                encoder,
                perceptual,
                OptimizerConfig.from_settings(self.settings, original.shape[-2:]),
            )
        return MethodResult(outcome.cloaked, style_target, outcome.steps_run)
