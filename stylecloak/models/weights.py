"""Where model files come from, and how we know they are the right files.

Lookup order (docs/architecture.md): an explicit path, then the ``STYLECLOAK_MODELS`` folder, then the user
cache. Nothing here downloads: fetching will be an explicit user action, never a side effect.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


class ModelNotFoundError(FileNotFoundError):
    """A model file is missing; the message says where we looked and how to get it."""


class ChecksumMismatchError(ValueError):
    """A model file exists but is not the file we expect (corrupt, truncated or tampered with)."""


@dataclass(frozen=True)
class ModelFile:
    """One pinned model file: its name inside its model folder and its sha256."""

    model: str  # folder name, e.g. "taef2"
    filename: str
    sha256: str
    upstream_url: str | None = None
    licence: str | None = None


def user_cache_dir() -> Path:
    """The per-user cache folder (``STYLECLOAK_CACHE`` overrides it, e.g. in tests)."""
    override = os.environ.get("STYLECLOAK_CACHE")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "stylecloak"


def models_dirs() -> list[Path]:
    """Folders searched for model files, in order: ``STYLECLOAK_MODELS`` then ``<cache>/models``."""
    dirs: list[Path] = []
    env = os.environ.get("STYLECLOAK_MODELS")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(user_cache_dir() / "models")
    return dirs


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatchError(
            f"{path}: sha256 is {actual[:12]}..., expected {expected[:12]}...; the file is corrupt or not the "
            "pinned release. Delete it and fetch it again."
        )


def resolve_model_file(
    spec: ModelFile, explicit_dir: str | os.PathLike[str] | None = None, verify: bool = True
) -> Path:
    """Find ``spec`` on disk and check its sha256.

    ``explicit_dir`` may be the file itself or the folder that holds it.
    """
    candidates: list[Path] = []
    if explicit_dir is not None:
        explicit = Path(explicit_dir).expanduser()
        candidates.append(explicit if explicit.is_file() else explicit / spec.filename)
    else:
        candidates.extend(d / spec.model / spec.filename for d in models_dirs())
    for candidate in candidates:
        if candidate.is_file():
            if verify:
                verify_sha256(candidate, spec.sha256)
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    # The remedy comes first: this message is often the first thing a new user reads.
    fetch = f"get it once with `stylecloak models fetch {spec.model}`, or " if spec.upstream_url else ""
    raise ModelNotFoundError(
        f"model {spec.model} is not here: {fetch}set STYLECLOAK_MODELS to the folder that holds '{spec.model}/', "
        f"or pass an explicit path (--encoder {spec.model}:PATH). Looked for {spec.model}/{spec.filename} in: {looked}"
        + (f"; the file is published at {spec.upstream_url}" if spec.upstream_url else "")
        + "."
    )
