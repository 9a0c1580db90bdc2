"""Where a cloak run writes, checked before any optimisation starts.

A run that could not write its result must say so before it spends minutes cloaking, in one line that names the
path and the reason. The artist's input folders are never written to unless they are the output folder: the
pin of ``--target auto`` goes to the output folder, or, with no output folder, to the user cache (keyed by the
input folder), never beside the inputs.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .models.weights import user_cache_dir


class OutputError(ValueError):
    """A place a run must write to cannot be written; the message is one line naming the path and the reason."""


def _reason(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, "") or type(exc).__name__


def check_writable_folder(folder: str | os.PathLike[str], role: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove that a file can be written in it (a probe file, removed at once).

    Raises :class:`OutputError` when it is a file, cannot be created, or cannot be written (permissions, a
    read-only disk)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is a file, not a folder; the {role} must be a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the {role} ({_reason(exc)})") from None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".stylecloak-probe-", delete=True):
            pass
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write in the {role} ({_reason(exc)})") from None
    return folder


def writable_inputs(inputs: Sequence[Path], out_dir: str | os.PathLike[str] | None) -> tuple[list[Path], list[str]]:
    """The inputs whose output folder can be written, and one line for each folder that cannot.

    With ``out_dir`` one folder serves all: if it cannot be written, nothing can. Without it, each output goes
    beside its input, and an input whose folder cannot be written fails alone."""
    folders = [Path(out_dir)] if out_dir is not None else sorted({path.parent for path in inputs})
    unwritable: dict[Path, str] = {}
    for folder in folders:
        try:
            check_writable_folder(folder)
        except OutputError as exc:
            unwritable[folder] = str(exc)
    if out_dir is not None:
        return ([] if unwritable else list(inputs)), list(unwritable.values())
    return [path for path in inputs if path.parent not in unwritable], list(unwritable.values())


def pin_folder(inputs: Sequence[Path], out_dir: str | os.PathLike[str] | None) -> Path:
    """Where the ``--target auto`` pin of a run lives: the output folder, or with none, a folder of the user cache
    named after the input folders (so that the artist's own folders stay untouched and a later run of the same
    folders finds the same pin)."""
    if out_dir is not None:
        return Path(out_dir)
    folders = sorted({str(Path(p).resolve().parent) for p in inputs})
    key = hashlib.sha256("\n".join(folders).encode("utf-8")).hexdigest()[:16]
    return user_cache_dir() / "pins" / key
