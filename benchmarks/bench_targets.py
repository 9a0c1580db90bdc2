"""Per-target table: how far the cloak moves the encoder towards each target style, and after JPEG q85.

For each target of the catalogue and each painting (resized to --long-side), cloak at the given intensity and
quality, and measure `target_progress` on the 8-bit result and on a JPEG q85 copy of it (the most common
countermeasure: every site re-encodes uploads). Also shows which target `--target auto` picks for the set.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_targets.py --limit 4 --long-side 256
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylecloak.countermeasures import jpeg
from stylecloak.descriptors import GramDescriptor
from stylecloak.imaging import image_to_tensor
from stylecloak.metrics import target_progress
from stylecloak.models.lpips import load_vgg16_features
from stylecloak.optimize import quantize_8bit
from stylecloak.pipeline import Cloaker
from stylecloak.settings import INTENSITY_BUDGETS, QUALITY_PRESETS, CloakSettings
from stylecloak.targets import available_targets
from stylecloak.targets.choice import choose_target

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAINTINGS = ROOT.parent / "shared" / "data" / "paintings"


def load_resized(path: Path, long_side: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = long_side / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        return np.asarray(im, dtype=np.float32) / 255.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paintings", type=Path, default=DEFAULT_PAINTINGS)
    parser.add_argument("--long-side", type=int, default=256)
    parser.add_argument("--intensity", default="medium", choices=list(INTENSITY_BUDGETS))
    parser.add_argument("--quality", default="default", choices=list(QUALITY_PRESETS))
    parser.add_argument("--limit", type=int, default=5, help="N paintings spread evenly over the manifest (0: all)")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    with open(args.paintings / "manifest.csv", newline="") as f:
        names = [row["file"] for row in csv.DictReader(f)]
    if args.limit and args.limit < len(names):
        names = [names[round(i * (len(names) - 1) / max(1, args.limit - 1))] for i in range(args.limit)]
    images = [load_resized(args.paintings / name, args.long_side) for name in names]
    auto = choose_target([image_to_tensor(rgb) for rgb in images], GramDescriptor(load_vgg16_features())).target

    rows = []
    base = CloakSettings.from_presets(args.intensity, args.quality, device="cpu")
    cloaker = Cloaker(base)
    for target in available_targets():
        cloaker = Cloaker(
            CloakSettings.from_presets(args.intensity, args.quality, device="cpu", target=target.name),
            encoder=cloaker.encoder,
            perceptual=cloaker.perceptual,
        )
        progress, after_jpeg, lpips, seconds = [], [], [], []
        for _name, rgb in zip(names, images):
            started = time.perf_counter()
            cloaked_uint8, report = cloaker.cloak_rgb(rgb)
            seconds.append(time.perf_counter() - started)
            original = quantize_8bit(image_to_tensor(rgb))
            cloaked = image_to_tensor(cloaked_uint8.astype(np.float32) / 255.0)
            rendered = cloaker.render_target(original)
            progress.append(report.target_progress)
            after_jpeg.append(target_progress(cloaker.encoder, original, jpeg(cloaked, 85), rendered))
            lpips.append(report.lpips)
        row = {
            "target": target.name,
            "target_progress_median": statistics.median(progress),
            "target_progress_jpeg85_median": statistics.median(after_jpeg),
            "lpips_max": max(lpips),
            "seconds_median": statistics.median(seconds),
            "auto_choice": target.name == auto,
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    print("| target | median target_progress | after JPEG q85 | max lpips | median s |")
    print("|---|---|---|---|---|")
    for r in rows:
        mark = " (auto's choice)" if r["auto_choice"] else ""
        print(
            f"| {r['target']}{mark} | {r['target_progress_median']:.3f} | {r['target_progress_jpeg85_median']:.3f} "
            f"| {r['lpips_max']:.4f} | {r['seconds_median']:.1f} |"
        )
    print()
    print(
        f"{len(names)} paintings ({', '.join(names)}), long side {args.long_side} px, intensity {args.intensity}, "
        f"quality {args.quality}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"paintings": names, "auto": auto, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
