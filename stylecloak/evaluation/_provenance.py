"""What an attack's figures depend on besides its seed: the exact pixels it trained on and where it ran.

A seed fixes the mimic's draws (initial weights, noise, batches, samples), not its inputs or its arithmetic.
Two runs of one seed can still differ when a training set differs by a level in a few pixels (a posted folder
written again, another resize on the way) or when the float sums run in another order (another thread count,
another processor): the training then follows another path, and the verdicts with it. So every report names
the pixels each condition trained on and the machine it ran on; two reports that agree on both, and on the
seed, should agree to the sample, and where they do not, these fields say where to look first.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

_DIGEST_CHARS = 16  # 64 bits: enough to tell two training sets apart, short enough to read in a table


def images_digest(images: Sequence[torch.Tensor]) -> str:
    """A short hash of the images exactly as given (their order, shapes and float32 values): equal only for
    the same pixels, so a one-level change anywhere gives another digest."""
    digest = hashlib.sha256()
    for image in images:
        values = image.detach().to(torch.float32).cpu().contiguous().numpy()
        digest.update(f"{values.shape}|".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()[:_DIGEST_CHARS]


def _processor_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's model name where the system says it (Linux), else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux, or not readable: fall back below
    return platform.processor() or platform.machine()


def run_environment() -> dict[str, Any]:
    """Where a run ran, as far as its arithmetic depends on it: the versions of Python, torch and NumPy, torch's
    thread count and the processor."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "threads": torch.get_num_threads(),
        "processor": _processor_name(),
        "platform": sys.platform,
    }
