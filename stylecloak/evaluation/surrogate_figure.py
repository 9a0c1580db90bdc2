"""The figure of the experimental ``away`` term: how much harder a surrogate diffusion model finds the cloak to
denoise than the original, where a mimic looks.

A cloak made with ``--surrogate FILE`` (``surrogate_mode`` "away") spends part of its budget raising that
surrogate's denoising loss on its shrunk views (stylecloak.models.surrogate). None of the encoder's figures
(target progress, the decoder's, the style statistics) sees that term, so without this one a user cannot tell
that the cloak did anything. Through the surrogate the cloak was made with it checks the optimisation; through
another one it is a first look at whether the effect carries to a second model. It is not a protection rate:
in our runs (docs/protection.md, 2026-12-06) it ranked designs by how much of the budget went to the term, not
by what a mimic learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..models.encoders import LatentEncoder
from ..models.surrogate import DenoiserTerm, check_latent_channels
from .mimic import TrainedMimic, resize_for_mimic

# Noise levels spread evenly over the term's range, and the seed of their noise: the same noise for the original
# and the cloak, so that the ratio compares the images and not two draws (benchmarks/bench_term_check.py too).
FIGURE_LEVELS = 32
FIGURE_NOISE_SEED = 99


def denoising_loss(term: DenoiserTerm, latents: torch.Tensor) -> float:
    """The surrogate's mean denoising loss per latent value over ``FIGURE_LEVELS`` evenly spread noise levels,
    with fixed noise (``term`` in mode "away", whose raw value is minus that loss)."""
    return -term.mean_over_levels(latents, FIGURE_LEVELS, seed=FIGURE_NOISE_SEED) / latents[0].numel()


def surrogate_term(model: TrainedMimic) -> DenoiserTerm:
    """The unweighted ``away`` term of ``model``, at the noise levels every cloak's term draws from by default."""
    return DenoiserTerm(model, mode="away")


def mimic_size_latents(encoder: LatentEncoder, image: torch.Tensor, long_side: int) -> torch.Tensor:
    """The latents of ``image`` (1x3xHxW in [0, 1]) shrunk as a mimic training at ``long_side`` px takes it."""
    with torch.no_grad():
        return encoder.encode(resize_for_mimic(image, long_side))


def relative_denoising_loss(
    model: TrainedMimic,
    encoder: LatentEncoder,
    original: torch.Tensor,
    cloaked: torch.Tensor,
    long_side: int | None = None,
) -> float:
    """The surrogate's denoising loss on the cloak's latents over that on the original's (1.0: as hard to
    denoise as the original; the ``away`` term pushes it up), both shrunk to ``long_side`` px on the long side
    (default: the size the surrogate was trained at, ``model.config.image_size``), with the same noise."""
    term = surrogate_term(model)
    size = long_side or model.config.image_size
    latents = [mimic_size_latents(encoder, image, size) for image in (original, cloaked)]
    check_latent_channels(model, latents[0], encoder.name)  # the term checks too, but cannot name the encoder
    reference = denoising_loss(term, latents[0])
    return denoising_loss(term, latents[1]) / max(reference, 1e-12)


@dataclass
class SurrogateFigure:
    """The ``away`` term's figure of one pair (see :func:`relative_denoising_loss`), and through what."""

    surrogate: str  # the surrogate file measured through
    long_side: int  # the size both images were shrunk to, in px (the surrogate's training size)
    relative_loss: float  # the cloak's denoising loss over the original's: 1.0 as hard, above 1 harder
    # Whether the cloaked file records this same file as the surrogate it was made with: then the figure checks
    # the optimisation; through another surrogate, whether the effect carries to a second model. None: the file
    # records no settings (not written by `stylecloak cloak`), so which it was made with is unknown.
    made_with_it: bool | None

    def lines(self) -> list[str]:
        """The figure as `stylecloak evaluate` reports it (two lines)."""
        through = {
            True: "the surrogate the cloak was made with: a check that its term worked",
            False: "a surrogate the cloak was not made with: does the effect carry to a second model",
            None: "a surrogate (the cloaked file does not record whether it was made with it)",
        }[self.made_with_it]
        return [
            f"  a surrogate's denoising loss at {self.long_side} px (the experimental `away` term's figure): "
            f"{self.relative_loss:.2f}x the original's",
            f"    through {Path(self.surrogate).name}, {through}; not a protection rate",
        ]


def measure_surrogate_figure(
    model: TrainedMimic,
    path: str | Path,
    encoder: LatentEncoder,
    original: torch.Tensor,
    cloaked: torch.Tensor,
    recorded: dict[str, Any] | None = None,
) -> SurrogateFigure:
    """:func:`relative_denoising_loss` of the pair through ``model`` (loaded from ``path``), at its training size;
    ``recorded`` is the settings the cloaked file records (None or empty: it records none)."""
    made_with_it: bool | None = None
    if recorded:
        made_with = recorded.get("surrogate")
        made_with_it = isinstance(made_with, str) and _same_file(Path(made_with), Path(path))
    return SurrogateFigure(
        surrogate=str(path),
        long_side=model.config.image_size,
        relative_loss=relative_denoising_loss(model, encoder, original, cloaked),
        made_with_it=made_with_it,
    )


def _same_file(first: Path, second: Path) -> bool:
    first, second = first.expanduser(), second.expanduser()
    try:
        return first.samefile(second)
    except OSError:  # the recorded file may be gone or on another machine: compare what the paths say
        return first.resolve() == second.resolve()
