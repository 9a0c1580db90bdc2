"""One batch worker: loads the models once, then cloaks inputs one at a time into a staging file.

It is plain Python (a Ray Data actor calls it, and so can anything else). A worker never moves a result into
place and never writes the manifest: it returns the row, and the driver commits it (row first, then the output,
see :mod:`stylecloak.batch.ray_run`), so that one process alone decides what is done.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import first_line
from ..imaging import ImageInputError, load_image_bytes
from ..settings import CloakSettings
from ..targets.resolve import TargetRequest
from .manifest import ManifestRow, sha256_bytes
from .sources import BatchInput, is_uri, open_filesystem, read_input_bytes

STAGING_FOLDER = ".stylecloak-batch"


@dataclass(frozen=True)
class BatchJob:
    """What every worker of a batch needs; small and picklable, sent to each actor.

    ``settings.target`` is already a catalogue name when the target was ``auto`` (chosen once, by the driver).
    ``target_request`` is set for targets that are not catalogue entries (reference images, a Stable Diffusion
    prompt): each worker builds the same style from it (deterministically), as it cannot travel as an object.
    """

    source: str
    destination: str
    settings: CloakSettings
    target_request: TargetRequest | None = None
    fmt: str = "png"
    threads: int | None = None  # torch's CPU threads in each worker (None: leave as the process has it)

    def staging_path(self, item: BatchInput) -> Path:
        # Named after the input's relative path, so that a retried input reuses (overwrites) its own staging file.
        key = hashlib.sha256(item.relative.encode("utf-8")).hexdigest()[:32]
        return Path(self.destination) / STAGING_FOLDER / "staging" / f"{key}.{self.fmt}"


class BatchWorker:
    """Cloaks :class:`BatchInput` items for one :class:`BatchJob`. The models load in the constructor."""

    def __init__(self, job: BatchJob) -> None:
        import torch

        from ..pipeline import Cloaker

        if job.threads:
            torch.set_num_threads(job.threads)
        self.job = job
        cloaker = Cloaker(job.settings)
        if job.target_request is not None:
            from ..targets.resolve import resolve_target

            resolved = resolve_target(
                job.target_request, [], cloaker.device, encoder_spec=job.settings.encoder, seed=job.settings.seed
            )
            cloaker = cloaker.retarget(resolved.name, resolved.style)
        self.cloaker = cloaker
        self.filesystem = open_filesystem(job.source)[0] if is_uri(job.source) else None

    def cloak_one(self, item: BatchInput) -> ManifestRow:
        """Cloak one input into its staging file; every failure of the input itself becomes the row's error."""
        started = time.perf_counter()
        settings = self.cloaker.settings.to_dict()
        try:
            data = read_input_bytes(self.job.source, item, self.filesystem)
        except (OSError, ValueError) as exc:
            return ManifestRow(
                item.path,
                None,
                None,
                error=first_line(exc, 300),
                settings=settings,
                seconds=time.perf_counter() - started,
            )
        digest = sha256_bytes(data)
        try:
            source = load_image_bytes(data)
            staging = self.job.staging_path(item)
            staging.parent.mkdir(parents=True, exist_ok=True)
            report = self.cloaker.cloak_loaded(source, staging)
        except (ImageInputError, OSError, ValueError, RuntimeError) as exc:
            return ManifestRow(
                item.path,
                digest,
                None,
                error=first_line(exc, 300),
                settings=settings,
                seconds=time.perf_counter() - started,
            )
        final = item.output_path(self.job.destination, self.job.fmt)
        figures = replace(report, input=item.path, output=str(final)).to_dict()
        return ManifestRow(
            item.path, digest, str(final), settings=settings, report=figures, seconds=time.perf_counter() - started
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """Ray Data's batch call: columns ``path`` and ``relative`` in, one JSON ``row`` per input out."""
        rows = [
            self.cloak_one(BatchInput(str(path), str(relative))).to_json()
            for path, relative in zip(batch["path"], batch["relative"])
        ]
        return {"row": np.array(rows, dtype=object)}
