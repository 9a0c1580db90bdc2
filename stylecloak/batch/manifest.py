"""The batch manifest: one JSON line per input, appended as each result is committed.

A row says what happened to one input: its path and sha256, the output written, the settings, the report's
figures and the seconds, or the error. The file is append-only (a rerun appends; the last row for an input is the
one that counts), each line is flushed and fsync'ed before the output it describes is moved into place, and a
line cut short by a crash is ignored when read. So a crash can lose at most the outputs in flight, never leave a
row that claims a missing output.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.jsonl"


@dataclass
class ManifestRow:
    input: str
    sha256: str | None  # None when the input could not be read at all
    output: str | None  # None when nothing was written
    error: str | None = None  # one line; None when the input was cloaked
    settings: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)  # the cloak's figures (stylecloak.pipeline.CloakReport)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.output is not None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(path: str | os.PathLike[str]) -> dict[str, ManifestRow]:
    """The last row of each input in the manifest at ``path`` (none if there is no file yet)."""
    rows: dict[str, ManifestRow] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return rows
    for line in lines:
        try:
            data = json.loads(line)
            row = ManifestRow(**data)
        except (ValueError, TypeError):
            continue  # a line cut short by a crash, or not ours
        rows[row.input] = row
    return rows


class ManifestWriter:
    """Appends rows to the manifest, each one on disk before :meth:`append` returns."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        # A previous run killed mid-line left no newline: start on a fresh line so this row stays readable.
        if self._file.tell() > 0:
            with open(self.path, "rb") as existing:
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":
                    self._file.write("\n")

    def append(self, row: ManifestRow) -> None:
        self._file.write(row.to_json() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
