"""``stylecloak surrogate FILE``: train the experimental surrogate diffusion model on procedural images
(stylecloak.models.surrogate.train_synthetic_surrogate) and save it; parse, call, print."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any


def run(args: argparse.Namespace) -> int:
    from ..errors import first_line
    from . import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, _error, _note, progress_bar

    out = Path(args.out).expanduser()
    if out.exists():
        _error(f"{out} exists; give another FILE or remove it")
        return EXIT_USAGE
    if not out.parent.is_dir():
        _error(f"no folder {out.parent} for {out.name}")
        return EXIT_USAGE
    if not os.access(out.parent, os.W_OK):  # before minutes of training, not after
        _error(f"cannot write to {out.parent}")
        return EXIT_USAGE

    from ..devices import resolve_device
    from ..models.encoders import load_encoder
    from ..models.surrogate import save_surrogate, train_synthetic_surrogate
    from ..models.weights import ChecksumMismatchError

    started = time.perf_counter()
    try:
        device = resolve_device("auto")
        encoder = load_encoder("taef2", device)  # the latent space the cloak works in
    except (ChecksumMismatchError, RuntimeError, OSError) as exc:  # ModelNotFoundError is an OSError
        _error(first_line(exc).strip("'\""))
        return EXIT_USAGE
    _note(f"drawing {args.images} procedural images and their renditions, then training on {device.type}")
    bars: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in bars:
            bars[phase] = progress_bar(total=total, desc=phase, unit="step", leave=False)
        bars[phase].update(done - bars[phase].n)
        if done == total:
            bars.pop(phase).close()

    model = train_synthetic_surrogate(encoder, device, args.images, args.seed, progress)
    try:
        save_surrogate(model, out)
    except OSError as exc:
        _error(f"cannot write {out}: {exc.strerror or exc}")
        return EXIT_SOME_FAILED
    print(f"{out}  ({time.perf_counter() - started:.0f} s); use it with: stylecloak cloak ... --surrogate {out}")
    return EXIT_OK
