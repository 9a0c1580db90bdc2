"""Measure the cloaking engine on the shared paintings, as the engine issue defines it.

Each painting is resized so that its long side is 512 px, written as PNG, and cloaked with the real command-line
path (`Cloaker.cloak_file`): the figures are measured on the saved 8-bit files, and `seconds` is the wall time of
one file (load, target, optimisation, save, re-measure), with the models loaded once beforehand.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_engine.py
    ... --intensity medium --quality default --long-side 512 --limit 5 --json-out results/engine.json

Prints one line per painting while it runs, then a Markdown table and the summary the issue asks for.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from stylecloak import __version__
from stylecloak.pipeline import Cloaker
from stylecloak.settings import INTENSITY_BUDGETS, QUALITY_PRESETS, CloakSettings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAINTINGS = ROOT.parent / "shared" / "data" / "paintings"


def resized_copy(source: Path, folder: Path, long_side: int) -> Path:
    with Image.open(source) as im:
        im = im.convert("RGB")
        scale = long_side / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        path = folder / source.name
        im.save(path)
    return path


def auto_targets_by_artist(paintings: Path, manifest: list[dict[str, str]], cloaker: Cloaker) -> dict[str, str]:
    """painting file -> the target `--target auto` picks for its artist's portfolio (Gram descriptor, as the CLI)."""
    from stylecloak.descriptors import GramDescriptor
    from stylecloak.imaging import image_to_tensor, load_image
    from stylecloak.models.lpips import load_vgg16_features
    from stylecloak.targets.choice import choose_target

    descriptor = GramDescriptor(load_vgg16_features(cloaker.device))
    by_artist: dict[str, list[str]] = {}
    for row in manifest:
        by_artist.setdefault(row["artist"], []).append(row["file"])
    chosen = {}
    for artist, files in by_artist.items():
        images = [image_to_tensor(load_image(paintings / name).rgb) for name in files]
        choice = choose_target(images, descriptor)
        print(f"{artist}: {len(files)} paintings -> {choice.target}", file=sys.stderr, flush=True)
        chosen.update({name: choice.target for name in files})
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paintings", type=Path, default=DEFAULT_PAINTINGS, help="folder with manifest.csv")
    parser.add_argument("--long-side", type=int, default=512)
    parser.add_argument("--intensity", default="medium", choices=list(INTENSITY_BUDGETS))
    parser.add_argument("--quality", default="default", choices=list(QUALITY_PRESETS))
    parser.add_argument(
        "--target",
        default=None,
        help="target style (default: the engine's default); 'auto' chooses one per artist of the "
        "manifest, as `stylecloak cloak ARTIST_DIR --target auto` would",
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N paintings (0: all)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write all rows and the summary as JSON")
    args = parser.parse_args(argv)

    with open(args.paintings / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    if args.limit:
        manifest = manifest[: args.limit]
    names = [row["file"] for row in manifest]
    auto = args.target == "auto"
    overrides = {"device": "cpu"} | ({"target": args.target} if args.target and not auto else {})
    settings = CloakSettings.from_presets(args.intensity, args.quality, **overrides)
    cloaker = Cloaker(settings)
    targets = auto_targets_by_artist(args.paintings, manifest, cloaker) if auto else {}
    cloakers: dict[str, Cloaker] = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "in", Path(tmp) / "out"
        inputs.mkdir()
        for name in names:
            target = targets.get(name, settings.target)
            if target not in cloakers:  # one Cloaker per target, sharing the loaded models
                cloakers[target] = Cloaker(
                    replace(settings, target=target), encoder=cloaker.encoder, perceptual=cloaker.perceptual
                )
            path = resized_copy(args.paintings / name, inputs, args.long_side)
            started = time.perf_counter()
            report = cloakers[target].cloak_file(path, outputs)
            seconds = time.perf_counter() - started
            row = {
                "painting": name,
                "target": target,
                "size": f"{report.width}x{report.height}",
                "lpips": report.lpips,
                "target_progress": report.target_progress,
                "seconds": seconds,
            }
            rows.append(row)
            print(
                f"{name:40s} {row['size']:>9s}  lpips {report.lpips:.4f}  progress {report.target_progress:.3f}  "
                f"{seconds:6.1f} s",
                file=sys.stderr,
                flush=True,
            )

    summary = {
        "images": len(rows),
        "intensity": args.intensity,
        "quality": args.quality,
        "target": "auto (one per artist)" if auto else settings.target,
        "budget": settings.budget,
        "steps": settings.steps,
        "lpips_max": max(r["lpips"] for r in rows),
        "budget_held": all(r["lpips"] <= settings.budget for r in rows),
        "target_progress_median": statistics.median(r["target_progress"] for r in rows),
        "target_progress_min": min(r["target_progress"] for r in rows),
        "seconds_median": statistics.median(r["seconds"] for r in rows),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "version": __version__,
    }
    print("| painting | target | size | lpips | target_progress | seconds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['painting']} | {r['target']} | {r['size']} | {r['lpips']:.4f} | {r['target_progress']:.3f} "
            f"| {r['seconds']:.1f} |"
        )
    print()
    print(
        f"{summary['images']} paintings, long side {args.long_side} px, intensity {args.intensity} "
        f"(budget {settings.budget}), quality {args.quality} ({settings.steps} steps), target {summary['target']}:"
    )
    print(
        f"max lpips {summary['lpips_max']:.4f} (budget held on every saved file: {summary['budget_held']}), "
        f"median target_progress {summary['target_progress_median']:.3f} (min {summary['target_progress_min']:.3f}), "
        f"median {summary['seconds_median']:.1f} s per image ({summary['machine']})"
    )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    return 0 if summary["budget_held"] else 1


if __name__ == "__main__":
    sys.exit(main())
