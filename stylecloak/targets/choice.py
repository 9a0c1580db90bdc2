"""Choose one target style for a whole portfolio (``--target auto``), and pin it for later.

The paper's rule: measure the style distance from the artist's centroid to each candidate style, and pick one
that is far but not the farthest (a percentile band of the candidates' distances, here the 50th to 75th). The
farthest styles tend to be the ones the cloak reaches least within its budget; a middle-far one is both
different enough and reachable. The *same* target serves every image of a portfolio, so that a mimic trained
on it learns one consistent wrong style.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..descriptors import StyleDescriptor, centroid, resize_long_side, style_distance
from ..imaging import ImageInputError, atomic_write_bytes, image_to_tensor, load_image
from .base import TargetStyle, available_targets

DEFAULT_BAND = (50.0, 75.0)
PIN_FILENAME = ".stylecloak.json"


@dataclass
class CandidateDistance:
    target: str
    distance: float
    percentile: float


@dataclass
class TargetChoice:
    target: str
    descriptor: str
    band: tuple[float, float]
    images: int
    candidates: list[CandidateDistance] = field(default_factory=list)

    def table(self) -> str:
        """Every candidate's distance and percentile, the chosen one marked: what `targets choose` prints."""
        lines = [f"{'target':14s} {'distance':>9s} {'percentile':>10s}"]
        for candidate in self.candidates:
            mark = "  <- chosen" if candidate.target == self.target else ""
            lines.append(f"{candidate.target:14s} {candidate.distance:9.3f} {candidate.percentile:10.0f}{mark}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_target(
    images: Sequence[torch.Tensor],
    descriptor: StyleDescriptor,
    candidates: Sequence[TargetStyle] | None = None,
    band: tuple[float, float] = DEFAULT_BAND,
    seed: int = 0,
) -> TargetChoice:
    """The candidate whose distance from the artist's style centroid lies in the ``band`` of percentiles
    (nearest the band's middle), for a portfolio of 1x3xHxW images in [0, 1]."""
    if not images:
        raise ValueError("no images to choose a target for")
    candidates = list(candidates) if candidates is not None else available_targets()
    if not candidates:
        raise ValueError("no candidate target styles")
    small = [resize_long_side(image) for image in images]
    artist = centroid([descriptor.describe(image) for image in small])
    distances = []
    for candidate in candidates:
        rendered = centroid([descriptor.describe(candidate.render(image, seed=seed)) for image in small])
        distances.append((candidate.name, style_distance(artist, rendered)))
    ranked = sorted(distances, key=lambda item: item[1])
    last = max(1, len(ranked) - 1)
    scored = [CandidateDistance(name, distance, 100.0 * rank / last) for rank, (name, distance) in enumerate(ranked)]
    middle = sum(band) / 2
    in_band = [c for c in scored if band[0] <= c.percentile <= band[1]] or scored
    chosen = min(in_band, key=lambda c: (abs(c.percentile - middle), c.target))
    return TargetChoice(chosen.target, descriptor.name, band, len(images), scored)


def load_portfolio(paths: Sequence[str | os.PathLike[str]], long_side: int = 256) -> list[torch.Tensor]:
    """The readable images of a portfolio, small (style does not need full resolution). Unreadable ones are
    skipped: the batch that cloaks them reports each one."""
    images = []
    for path in paths:
        try:
            image = image_to_tensor(load_image(path).rgb)
        except (ImageInputError, OSError):
            continue
        if max(image.shape[-2:]) > long_side:
            image = resize_long_side(image, long_side)
        images.append(image)
    return images


def read_pin(folder: str | os.PathLike[str]) -> str | None:
    """The target pinned for the portfolio in ``folder``, if any."""
    path = Path(folder) / PIN_FILENAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable stylecloak settings file ({exc})") from None
    target = data.get("target") if isinstance(data, dict) else None
    if not isinstance(target, str) or not target:
        raise ValueError(f"{path}: has no 'target' entry")
    return target


def write_pin(folder: str | os.PathLike[str], choice: TargetChoice, version: str) -> Path:
    """Pin ``choice`` for the portfolio in ``folder`` (a small JSON file, written atomically)."""
    path = Path(folder) / PIN_FILENAME
    data = {"target": choice.target, "chosen_by": choice.to_dict(), "stylecloak": version}
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
    return path
