"""How far under the budget the optimiser aims (``budget_margin``) against how far the cloak moves the encoder.

The cloak aims at ``budget_margin`` times each visibility bound while it optimises, and the final check scales
the best step onto the bounds. This runs the same cloaks (medium, default quality, one target) with each margin
on a few shared paintings and prints the target progress and the visibility figures of each.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_budget_margin.py --margins 0.95,0.9
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from stylecloak.pipeline import Cloaker
from stylecloak.settings import CloakSettings

PAINTINGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "paintings"
NAMES = ("hokusai_great_wave.png", "durer_lion.png", "cassatt_summertime.png", "kandinsky_composition_viii.png")


def load(name: str, long_side: int) -> np.ndarray:
    with Image.open(PAINTINGS / name) as im:
        im = im.convert("RGB")
        scale = long_side / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        return np.asarray(im, dtype=np.float32) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--margins", default="0.95,0.9")
    parser.add_argument("--long-side", type=int, default=256)
    parser.add_argument("--target", default="ink-hatching")
    args = parser.parse_args()
    base = Cloaker(CloakSettings.from_presets("medium", "default", target=args.target), cache_targets=False)
    print("| margin | painting | target progress | lpips | ssim | worst window | psnr dB | steps | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for margin in (float(m) for m in args.margins.split(",")):
        settings = CloakSettings.from_presets("medium", "default", target=args.target, budget_margin=margin)
        cloaker = Cloaker(settings, encoder=base.encoder, perceptual=base.perceptual, cache_targets=False)
        progress = []
        for name in NAMES:
            started = time.perf_counter()
            _, r = cloaker.cloak_rgb(load(name, args.long_side))
            progress.append(r.target_progress)
            print(
                f"| {margin} | {name[:-4]} | {r.target_progress:.3f} | {r.lpips:.4f} | {r.ssim:.3f} | "
                f"{r.ssim_window_min:.3f} | {r.psnr:.1f} | {r.steps} | {time.perf_counter() - started:.0f} |",
                flush=True,
            )
        print(f"| {margin} | median | {statistics.median(progress):.3f} | | | | | | |", flush=True)


if __name__ == "__main__":
    main()
