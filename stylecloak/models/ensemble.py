"""An ensemble encoder: one cloak against several latent spaces at once (``--encoder sd-vae+sdxl-vae+taef2``).

The members' latents are concatenated along channels, each scaled by ``sqrt(weight) / scale``, so that the
optimiser's squared distance is ``sum_i weight_i * ||E_i(x) - E_i(t)||^2 / scale_i^2``. ``scale_i`` is the
member's typical latent RMS (:data:`LATENT_RMS`), so that one latent space with large numbers does not drown the
others: with equal weights, each member counts about equally.

Tiling stays exact for members with a global head (TAEF2): the ensemble's stem is the members' stems side by side
(all at 1/8 resolution), and its head splits the channels back and runs each member's head.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import LatentEncoder
from .spec import ModelSpec, parse_model_spec

# The RMS of an encoder's latents: the scale that puts members on one footing. TAEF2's is the mean over the 21
# shared paintings at 256 px (0.81 to 0.88). The others count as 1: the scaling factor of an SD/SDXL/FLUX VAE
# is chosen to make its latents unit-variance, and the TAESD family reproduces those scaled latents.
LATENT_RMS: dict[str, float] = {"taef2": 0.85}


class EnsembleEncoder(LatentEncoder):
    def __init__(self, members: list[LatentEncoder], weights: list[float], scales: list[float] | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one encoder")
        if len(weights) != len(members) or any(w <= 0 for w in weights):
            raise ValueError("an ensemble needs one positive weight per member")
        downscales = {m.downscale for m in members}
        if len(downscales) != 1:
            raise ValueError(
                f"ensemble members must share one latent resolution; they downscale by {sorted(downscales)}"
            )
        self.members = nn.ModuleList(members)
        self.weights = list(weights)
        self.scales = scales or [LATENT_RMS.get(m.name, 1.0) for m in members]
        self.factors = [math.sqrt(w) / s for w, s in zip(self.weights, self.scales)]
        self.name = "+".join(m.name for m in members)
        self.latent_channels = sum(m.latent_channels for m in members)
        self.downscale = members[0].downscale
        self.stem_context_px = max(m.stem_context_px for m in members)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([f * m.encode(image) for m, f in zip(self.members, self.factors)], dim=1)

    def split(self) -> tuple[nn.Module, nn.Module]:
        stems, heads = zip(*(m.split() for m in self.members))
        with torch.no_grad():  # each stem's width, from a small probe
            probe = torch.zeros(1, 3, 64, 64, device=_device(self))
            widths = [int(stem(probe).shape[1]) for stem in stems]
        return _SideBySide(list(stems)), _SplitHeads(list(heads), widths, self.factors)

    @property
    def can_decode(self) -> bool:
        return any(m.can_decode for m in self.members)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """What the first member that has a decoder sees."""
        start = 0
        for member, factor in zip(self.members, self.factors):
            end = start + member.latent_channels
            if member.can_decode:
                return member.decode(latents[:, start:end] / factor)
            start = end
        raise NotImplementedError(f"no member of {self.name!r} has a decoder")


class _SideBySide(nn.Module):
    def __init__(self, stems: list[nn.Module]) -> None:
        super().__init__()
        self.stems = nn.ModuleList(stems)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([stem(image) for stem in self.stems], dim=1)


class _SplitHeads(nn.Module):
    def __init__(self, heads: list[nn.Module], widths: list[int], factors: list[float]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(heads)
        self.widths, self.factors = widths, factors

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        parts = torch.split(features, self.widths, dim=1)
        return torch.cat([f * head(part) for head, part, f in zip(self.heads, parts, self.factors)], dim=1)


def _device(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def parse_member(spec: str) -> tuple[str, float]:
    """``"sd-vae:/m/vae@0.5"`` -> ``("sd-vae:/m/vae", 0.5)``; without ``@WEIGHT`` the weight is 1 (models.spec)."""
    (member,) = parse_model_spec(spec)[:1] or [ModelSpec("")]
    return member.text, member.weight


def parse_members(spec: str) -> list[tuple[str, float]]:
    """``"sd-vae:/m/vae@0.5+taef2"`` -> ``[("sd-vae:/m/vae", 0.5), ("taef2", 1.0)]`` (empty parts are skipped)."""
    return [(member.text, member.weight) for member in parse_model_spec(spec)]
