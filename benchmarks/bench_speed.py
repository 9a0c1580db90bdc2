"""How long the default quality takes on a square image, through the command line's code path.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_speed.py --size 1024 --repeats 3
    ... --precision auto fp32        both precisions, alternating, in one run
    ... --setting view_objective=decoded --setting full_size_weight=0 --setting surrogate=FILE
                                     an experimental design (any CloakSettings field)

The image is the central square of a shared painting, resized to SIZE x SIZE. Each run cloaks it with
``Cloaker.cloak_file`` (target rendering, optimisation, saving and the re-measure of the saved file; the models
are loaded once before), and prints the wall time with the saved file's LPIPS and target progress. The summary
gives the median of the runs for each precision.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_designs import parse_override
from PIL import Image

from stylecloak.pipeline import Cloaker
from stylecloak.settings import CloakSettings

ROOT = Path(__file__).resolve().parents[1]
PAINTINGS = ROOT.parent / "shared" / "data" / "paintings"


def square_copy(source: Path, folder: Path, size: int) -> Path:
    with Image.open(source) as im:
        im = im.convert("RGB")
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        square = im.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
        path = folder / f"{source.stem}-{size}.png"
        square.save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--painting", default="hokusai_great_wave.png")
    parser.add_argument("--quality", default="default")
    parser.add_argument("--intensity", default="medium")
    parser.add_argument("--target", default="ink-hatching")
    parser.add_argument("--precision", nargs="+", default=["auto"], choices=["auto", "bf16", "fp32"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--setting", action="append", default=[], metavar="FIELD=VALUE", help="a CloakSettings field")
    args = parser.parse_args(argv)
    overrides = dict(parse_override(text, CloakSettings) for text in args.setting)

    cloakers = {}
    for precision in args.precision:
        settings = CloakSettings.from_presets(
            args.intensity, args.quality, target=args.target, device=args.device, precision=precision, **overrides
        )
        previous = next(iter(cloakers.values()), None)
        cloakers[precision] = Cloaker(
            settings,
            encoder=previous.encoder if previous else None,
            perceptual=previous.perceptual if previous else None,
            cache_targets=False,
        )
    results: dict[str, list[dict]] = {p: [] for p in args.precision}
    with tempfile.TemporaryDirectory() as tmp:
        image = square_copy(PAINTINGS / args.painting, Path(tmp), args.size)
        for repeat in range(args.repeats):
            for precision, cloaker in cloakers.items():  # alternating, so that drift in the machine hits both
                started = time.perf_counter()
                report = cloaker.cloak_file(image, Path(tmp) / "out")
                seconds = time.perf_counter() - started
                row = {
                    "precision": precision,
                    "run": repeat + 1,
                    "seconds": round(seconds, 1),
                    "lpips": round(report.lpips, 4),
                    "target_progress": round(report.target_progress, 4),
                    "steps": report.steps,
                }
                results[precision].append(row)
                print(json.dumps(row), flush=True)
    print(
        f"\n{args.size}x{args.size} {args.painting}, intensity {args.intensity}, quality {args.quality}, target "
        f"{args.target}, {args.device} ({torch.get_num_threads()} threads)"
        + (f", {' '.join(args.setting)}" if args.setting else "")
        + ":"
    )
    for precision, rows in results.items():
        print(
            f"  precision {precision:4s}: median {statistics.median(r['seconds'] for r in rows):.1f} s "
            f"(runs {', '.join(str(r['seconds']) for r in rows)}), lpips {max(r['lpips'] for r in rows):.4f} at most "
            f"(budget {cloakers[precision].settings.budget}), target progress median "
            f"{statistics.median(r['target_progress'] for r in rows):.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
