"""How much a cloak depends on the number of CPU threads: the same painting, settings and seed cloaked by
`stylecloak cloak` once per thread count (``OMP_NUM_THREADS``), then the pixels and the reported figures compared.

Float sums split across threads round differently; over the optimiser's steps such a difference can grow into a
different cloak. This prints how many values differ, by how much, and how far the figures move.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_thread_counts.py --work /tmp/threads
    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_thread_counts.py --work /tmp/threads-dec \\
        -- --view-objective decoded --full-size-weight 0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PAINTINGS = ROOT.parent / "shared" / "data" / "paintings"
FIGURES = ("lpips", "ssim", "ssim_window_min", "psnr", "target_progress", "target_progress_half")


def cloak(source: Path, out: Path, threads: int, extra: list[str]) -> dict[str, float]:
    """Cloak ``source`` into ``out`` with ``threads`` CPU threads; the report's figures."""
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "stylecloak", "cloak", str(source), "-o", str(out), "--json", *extra]
    result = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    report = json.loads(result.stdout.splitlines()[0])
    return {name: report[name] for name in FIGURES if report.get(name) is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="a new folder for the cloaks")
    parser.add_argument("--painting", default="hokusai_great_wave.png", help="a file of the shared paintings")
    parser.add_argument("--long-side", type=int, default=256)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--target", default="ink-hatching")
    parser.add_argument("cloak_args", nargs="*", help="after --: more options for `stylecloak cloak`")
    args = parser.parse_args()
    args.work.mkdir(parents=True)
    source = args.work / args.painting
    with Image.open(PAINTINGS / args.painting) as image:
        image = image.convert("RGB")
        image.thumbnail((args.long_side, args.long_side), Image.LANCZOS)
        image.save(source)
    extra = ["--target", args.target, *args.cloak_args]
    runs = {}
    for threads in (int(t) for t in args.threads.split(",")):
        out = args.work / f"threads-{threads}"
        figures = cloak(source, out, threads, extra)
        pixels = np.asarray(Image.open(next(out.glob("*.cloaked.png"))).convert("RGB")).astype(int)
        runs[threads] = (figures, pixels)
        print(f"{threads} thread(s):", " ".join(f"{k} {v:.4f}" for k, v in figures.items()), flush=True)
    first_figures, first_pixels = next(iter(runs.values()))
    first = next(iter(runs))
    for threads, (figures, pixels) in list(runs.items())[1:]:
        difference = np.abs(pixels - first_pixels)
        moved = max(abs(figures[k] - first_figures[k]) for k in figures if k in first_figures)
        print(
            f"{first} against {threads} thread(s): {(difference > 0).mean():.3f} of the values differ, by up to "
            f"{difference.max()} levels (mean {difference.mean():.3f}); the figures move by at most {moved:.4f}"
        )


if __name__ == "__main__":
    main()
