"""Render a target once per image: an on-disk cache keyed by the image's content.

Targets are stored as 8-bit arrays, and a fresh rendering is rounded to 8 bits too, so a cloak made with a
cached target is bit-for-bit the cloak made without one (``--seed`` stays reproducible). The key covers the
pixels, the target's name, the seed and the stylecloak version (a new version may render differently).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..imaging import atomic_write_bytes
from .base import TargetStyle


def content_key(image: torch.Tensor, target: str, seed: int) -> str:
    levels = torch.round(image.detach().clamp(0, 1) * 255).to(torch.uint8).cpu().numpy()
    digest = hashlib.sha256()
    digest.update(f"{__version__}|{target}|{seed}|{levels.shape}|".encode())
    digest.update(levels.tobytes())
    return digest.hexdigest()


def render_cached(
    target: TargetStyle, image: torch.Tensor, seed: int = 0, cache_dir: Path | None = None
) -> torch.Tensor:
    """``target.render(image, seed)`` rounded to 8 bits, read from ``cache_dir`` when it was made before."""
    path = cache_dir / f"{content_key(image, target.name, seed)}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            levels = np.load(path, allow_pickle=False)
            if levels.dtype == np.uint8 and levels.shape == tuple(image.shape):
                return torch.from_numpy(levels).to(image.device, torch.float32) / 255
        except (OSError, ValueError):
            pass  # a damaged cache entry is rendered again and replaced
    rendered = target.render(image.cpu(), seed=seed)
    levels = torch.round(rendered.clamp(0, 1) * 255).to(torch.uint8)
    if path is not None:
        buffer = io.BytesIO()
        np.save(buffer, levels.numpy(), allow_pickle=False)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as exc:
            # A cache that cannot be written costs time (the next run renders again), never the cloak itself.
            warnings.warn(f"could not cache the rendered target in {path.parent}: {exc.strerror or exc}", stacklevel=2)
    return levels.to(image.device, torch.float32) / 255
