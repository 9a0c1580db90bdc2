"""Matched perceptual cost: methods without a perceptual budget are brought to the same LPIPS as stylecloak's,
so that their effect is compared at an equal visible cost (docs/benchmarks.md, the peer comparison)."""

from __future__ import annotations

import torch

from ..metrics import lpips_distance
from ..optimize import enforce_budget


def match_budget(
    original: torch.Tensor, cloaked: torch.Tensor, perceptual: torch.nn.Module, budget: float
) -> tuple[torch.Tensor, float, bool]:
    """``cloaked`` itself if its LPIPS is within ``budget``; otherwise ``original + s * (cloaked - original)``
    (8-bit) with the largest ``s`` that meets it. Returns the image, its LPIPS and whether it was scaled down.

    A method whose output is already under the budget keeps it: it is shown at the lower cost it reached.
    """
    value = lpips_distance(perceptual, original, cloaked)
    if value <= budget:
        return cloaked, value, False
    matched, matched_value = enforce_budget(original, cloaked - original, perceptual, budget)
    return matched, matched_value, True
