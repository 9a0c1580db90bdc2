"""Which files a batch cloaks, how they are read, and where each one's output goes.

A source is a local folder (walked recursively), a glob (``art/**/*.jpg``), or a URI that pyarrow's file systems
open (``s3://bucket/uploads``, ``gs://...``, ``hdfs://...``; pyarrow comes with the ``cluster`` extra). Outputs
keep the inputs' sub-folders under the destination, named as ``stylecloak cloak`` names them
(``<stem>.cloaked.<fmt>``). Our own outputs (``*.cloaked.*``), hidden files and folders, and anything under the
destination are never inputs, so that a folder holding an earlier run's outputs is not cloaked twice.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import first_line
from ..imaging import IMAGE_SUFFIXES, OUTPUT_MARK

URI_MARK = "://"


@dataclass(frozen=True)
class BatchInput:
    """One input of a batch: ``path`` as its file system knows it, ``relative`` to the source's root (POSIX)."""

    path: str
    relative: str

    def output_path(self, destination: str | os.PathLike[str], fmt: str = "png") -> Path:
        relative = PurePosixPath(self.relative)
        return Path(destination).joinpath(*relative.parent.parts, f"{relative.stem}{OUTPUT_MARK}.{fmt}")


def is_uri(source: str) -> bool:
    return URI_MARK in source and not source.startswith("file://")


def open_filesystem(source: str) -> tuple[Any, str]:
    """The pyarrow file system of a URI and the path inside it. Raises ValueError in one line."""
    try:
        from pyarrow import fs
    except ImportError:
        raise ValueError(f'{source}: reading from a URI needs pyarrow: pip install -e ".[cluster]"') from None
    try:
        return fs.FileSystem.from_uri(source)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad or unreachable URI
        raise ValueError(f"{source}: cannot open ({first_line(exc)})") from None


def read_input_bytes(source: str, item: BatchInput, filesystem: Any = None) -> bytes:
    """The bytes of one input (local, or through the source URI's file system; pass ``filesystem`` when it is
    open already, so that a batch does not open its store again for every input)."""
    if is_uri(source):
        if filesystem is None:
            filesystem, _ = open_filesystem(source)
        with filesystem.open_input_file(item.path) as stream:
            return stream.read()
    with open(item.path, "rb") as stream:
        return stream.read()


def _is_candidate(relative: PurePosixPath) -> bool:
    if any(part.startswith(".") for part in relative.parts):
        return False  # hidden files and folders (ours among them: staging, pins)
    return relative.suffix.lower() in IMAGE_SUFFIXES and OUTPUT_MARK + "." not in relative.name


def list_inputs(source: str, destination: str | os.PathLike[str] | None = None) -> list[BatchInput]:
    """Every input of ``source`` in a stable order (sorted by relative path). Raises ValueError in one line when
    the source does not exist or cannot be listed."""
    if is_uri(source):
        return _list_uri(source)
    skip = Path(destination).resolve() if destination is not None else None
    if source.startswith("file://"):
        source = source[len("file://") :]
    if glob.has_magic(source):
        root = Path(_glob_root(source))
        paths: Iterable[Path] = (Path(p) for p in glob.glob(source, recursive=True))
    else:
        root = Path(source)
        if root.is_file():
            return [BatchInput(str(root), root.name)]
        if not root.is_dir():
            raise ValueError(f"{source}: no such file or folder")
        paths = (Path(folder) / name for folder, _, names in os.walk(root) for name in names)
    inputs = []
    for path in paths:
        if not path.is_file():
            continue
        if skip is not None and (path.resolve() == skip or skip in path.resolve().parents):
            continue
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if _is_candidate(relative):
            inputs.append(BatchInput(str(path), str(relative)))
    return sorted(inputs, key=lambda item: item.relative)


def _glob_root(pattern: str) -> str:
    """The folder part of a glob before its first wildcard, which outputs' sub-folders are relative to."""
    parts = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return str(Path(*parts)) if parts else "."


def _list_uri(source: str) -> list[BatchInput]:
    from pyarrow import fs

    filesystem, root = open_filesystem(source)
    try:
        infos = filesystem.get_file_info(fs.FileSelector(root, recursive=True))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{source}: cannot list ({first_line(exc)})") from None
    inputs = []
    for info in infos:
        if info.type != fs.FileType.File:
            continue
        relative = PurePosixPath(info.path).relative_to(PurePosixPath(root))
        if _is_candidate(relative):
            inputs.append(BatchInput(info.path, str(relative)))
    return sorted(inputs, key=lambda item: item.relative)
