"""A fast proxy of the mimicry attack: what would a latent model keep of the cloaked art, and whose style is it?

A mimic shrinks scraped art to its training size, encodes it, and learns to reproduce those latents; at best it
gives back the decoder's image of them. So the proxy takes the artist's clean and cloaked images at the mimic's
size, cuts the crops a mimic trains on, runs each through the encoder and decoder, and asks the mimicry judge
(trained exactly as the attack trains it: on round trips of the clean art against the other styles) whose style
each crop shows. The share of cloaked crops NOT attributed to the artist is the proxy's protection rate; the
same share on the clean crops is its baseline (low when the judge knows the artist). It costs seconds, where
training the mimic costs tens of minutes; ``benchmarks/bench_proxy.py`` holds it against the mimic's own rates.

It is a proxy and no more: it sees what the encoder keeps of each crop, not what a diffusion model learns from
a set of them (a model averages over the set, and can learn a style from a few crops the judge missed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..countermeasures import Countermeasure
from ..models.base import LatentEncoder
from .attack import ARTIST_LABEL, fit_judge_on_round_trips, purified, random_crops, round_trip
from .classifier import StyleClassifier
from .mimic import MIMIC_PRESETS, MimicConfig, resize_classes, resize_for_mimic


@dataclass
class ProxyResult:
    """The judge's verdicts on round trips of crops at the mimic's size. Rates are shares of crops."""

    image_size: int  # the mimic's long side
    crop: int  # the mimic's training crop
    judge: str
    judge_sanity: float | None  # share of the artist's clean training crops it attributes to the artist
    clean_not_artist: float  # the baseline: fresh crops of the clean art, not attributed to the artist
    cloaked_not_artist: float  # the proxy's protection rate
    per_image: list[float] = field(default_factory=list)  # cloaked_not_artist of each cloaked image, in order
    verdicts: dict[str, int] = field(default_factory=dict)  # the judge's verdicts on the cloaked crops
    purification: str | None = None  # applied to the cloaked set before it was shrunk, if any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        applied = f" after {self.purification}" if self.purification else ""
        return (
            f"mimic proxy ({self.image_size} px, {self.crop} px crops{applied}): the judge ({self.judge}) calls "
            f"{self.cloaked_not_artist:.0%} of the cloaked crops' round trips not the artist's "
            f"(clean: {self.clean_not_artist:.0%})"
        )


def _not_artist(verdicts: Sequence[str]) -> float:
    return sum(v != ARTIST_LABEL for v in verdicts) / len(verdicts)


def mimic_proxy(
    clean: Sequence[torch.Tensor],
    cloaked: Sequence[torch.Tensor],
    others: Mapping[str, Sequence[torch.Tensor]],
    judge: StyleClassifier,
    encoder: LatentEncoder,
    device: torch.device | None = None,
    config: MimicConfig = MIMIC_PRESETS["quick"],
    crops_per_image: int = 16,
    purifier: Countermeasure | None = None,
    judge_name: str = "classifier",
    fitted: bool = False,
) -> ProxyResult:
    """The proxy for the artist's ``clean`` works and the same works ``cloaked`` (1x3xHxW in [0, 1]), against
    clean works of other styles. ``config`` gives the mimic's size, crop and the judge's training (the quick
    mimic's by default). ``purifier``: what an attacker does to the scraped files first, applied to the cloaked
    set (pass the clean works as ``cloaked`` too, for the purification's effect on clean art). ``fitted``: the judge was already trained by :func:`fit_judge_on_round_trips` on these clean
    images and others (to reuse one judge for several cloaked sets); its sanity is then not measured again."""
    if not clean or len(clean) != len(cloaked):
        raise ValueError("the proxy needs the artist's clean works and the same works cloaked, as many of each")
    if not others:
        raise ValueError("the proxy needs images of other styles, so that the judge has something to tell apart")
    device = device or torch.device("cpu")
    size = config.image_size
    if purifier is not None:  # on the scraped files only: the judge knows the artist's art as it is
        cloaked = purified(cloaked, purifier, encoder, device)
    small_clean = [resize_for_mimic(image, size) for image in clean]
    small_cloaked = [resize_for_mimic(image, size) for image in cloaked]
    for image in small_clean:
        if min(image.shape[-2:]) < config.crop:
            raise ValueError(f"an image is smaller than the {config.crop} px crop at the mimic's {size} px")
    sanity = None
    if not fitted:
        small_others = resize_classes(others, size)
        sanity = fit_judge_on_round_trips(judge, small_clean, small_others, encoder, device, config)

    def verdicts_of(images: Sequence[torch.Tensor]) -> list[list[str]]:
        # Fresh crops (not the judge's seed), at the same places in a clean image and in its cloak.
        crops = [
            random_crops([image], config.crop, crops_per_image, config.seed + 1 + i) for i, image in enumerate(images)
        ]
        return [judge.predict(round_trip(encoder, image_crops, device)) for image_crops in crops]

    clean_verdicts = [v for verdicts in verdicts_of(small_clean) for v in verdicts]
    cloaked_by_image = verdicts_of(small_cloaked)
    per_image = [_not_artist(verdicts) for verdicts in cloaked_by_image]
    all_verdicts = [v for verdicts in cloaked_by_image for v in verdicts]
    return ProxyResult(
        image_size=size,
        crop=config.crop,
        judge=judge_name,
        judge_sanity=sanity,
        clean_not_artist=_not_artist(clean_verdicts),
        cloaked_not_artist=_not_artist(all_verdicts),
        per_image=per_image,
        verdicts=dict(sorted(Counter(all_verdicts).items())),
        purification=purifier.name if purifier is not None else None,
    )
