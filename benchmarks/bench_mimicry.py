"""The mimicry acceptance run: the quick mimic on the shared ukiyo-e paintings, clean against cloaked.

The artist is every painting of --artist-style in the manifest (9 ukiyo-e prints); the other styles are the rest
of the manifest. Each painting is shrunk to --long-side, as an artist would post it, written as PNG, and cloaked
with the command line at its defaults (--target auto, medium intensity). Then `stylecloak mimic` runs its quick
preset on the clean and the cloaked folders, with the default purifications. Everything goes under --work, and
the mimic's report.json and sample grids under WORK/mimicry/.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_mimicry.py --work /tmp/mimicry-bench

Only the command line is used, so the run is what a user gets; the seconds include the cloaking.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAINTINGS = ROOT.parent / "shared" / "data" / "paintings"


def shrink_to_png(source: Path, target: Path, long_side: int) -> None:
    with Image.open(source) as im:
        im = im.convert("RGB")
        im.thumbnail((long_side, long_side), Image.LANCZOS)
        im.save(target)


def stylecloak(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stylecloak", *args]
    print("+ stylecloak " + " ".join(args), file=sys.stderr)
    return subprocess.run(command, check=True, text=True, stdout=subprocess.PIPE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paintings", type=Path, default=DEFAULT_PAINTINGS)
    parser.add_argument("--artist-style", default="ukiyo-e")
    parser.add_argument("--long-side", type=int, default=256)
    parser.add_argument("--work", type=Path, required=True, help="a new or empty folder for everything the run makes")
    parser.add_argument("--intensity", default="medium", help="the cloak's intensity (default: medium)")
    parser.add_argument("--quality", default="default", help="the cloak's quality (default: default)")
    parser.add_argument(
        "--cloak-args",
        default="",
        metavar="'OPTIONS'",
        help="more options for `stylecloak cloak`, in one quoted string (e.g. '--mimic-downscales 2,4')",
    )
    parser.add_argument(
        "--post-only",
        action="store_true",
        help="write WORK/clean and WORK/others (with its manifest.csv) and stop: the posted folders for "
        "bench_designs.py and bench_mimic_sets.py",
    )
    parser.add_argument("mimic_args", nargs="*", help="extra options for `stylecloak mimic` (after --)")
    args = parser.parse_args(argv)

    if not (args.paintings / "manifest.csv").is_file():  # before any folder is made: one line, not a traceback
        raise SystemExit(
            f"bench_mimicry.py: no manifest.csv in {args.paintings}; give --paintings the shared paintings"
        )
    clean, others, cloaked = args.work / "clean", args.work / "others", args.work / "cloaked"
    for folder in (clean, others):
        folder.mkdir(parents=True, exist_ok=True)
    with open(args.paintings / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = []
    for row in rows:
        name = Path(row["file"]).stem + ".png"
        if row["style"] == args.artist_style:
            shrink_to_png(args.paintings / row["file"], clean / name, args.long_side)
        else:
            shrink_to_png(args.paintings / row["file"], others / name, args.long_side)
            labels.append(f"{name},{row['style']}\n")
    (others / "manifest.csv").write_text("file,style\n" + "".join(labels))
    if args.post_only:
        print(
            f"posted {len(list(clean.glob('*.png')))} works of {args.artist_style} in {clean}, {len(labels)} in {others}"
        )
        return 0

    started = time.perf_counter()
    cloak = stylecloak(
        "cloak",
        str(clean),
        "-o",
        str(cloaked),
        "--seed",
        "0",
        "--json",
        "--intensity",
        args.intensity,
        "--quality",
        args.quality,
        *shlex.split(args.cloak_args),
    )
    reports = [json.loads(line) for line in cloak.stdout.splitlines() if line.strip()]
    cloak_seconds = time.perf_counter() - started
    started = time.perf_counter()
    mimic = stylecloak(
        "mimic",
        "--clean",
        str(clean),
        "--cloaked",
        str(cloaked),
        "--others",
        str(others),
        "--out",
        str(args.work / "mimicry"),
        "--json",
        *args.mimic_args,
    )
    mimic_seconds = time.perf_counter() - started
    report = json.loads(mimic.stdout.splitlines()[-1])

    print(
        f"cloaks: target {sorted({r['target'] for r in reports})}, max lpips {max(r['lpips'] for r in reports):.4f}, "
        f"median target_progress {sorted(r['target_progress'] for r in reports)[len(reports) // 2]:.3f}, "
        f"{cloak_seconds:.0f} s for {len(reports)} images"
    )
    print(
        f"mimic: {report['artist_images']} artist images, other styles {report['other_styles']}, "
        f"judge {report['classifier']} (recognises {report['classifier_sanity']:.0%} of the artist's clean crops), "
        f"{mimic_seconds / 60:.1f} min"
    )
    if report.get("control_artist_rate") is not None:
        controls = "; ".join(
            f"{style}: " + ", ".join(f"{label} {count}" for label, count in verdicts.items())
            for style, verdicts in report["control_predictions"].items()
        )
        print(
            f"control: the judge attributes {report['control_artist_rate']:.0%} of the clean mimic's images of the "
            f"other styles to the artist ({controls})"
        )
    print("| training set | protection success rate | 95% interval over the verdicts | the judge's verdicts |")
    print("|---|---|---|---|")
    for condition in report["conditions"]:
        verdicts = ", ".join(f"{label} {count}" for label, count in condition["predictions"].items())
        low, high = condition.get("rate_interval") or (float("nan"), float("nan"))
        print(
            f"| {condition['condition']} | {condition['protection_success_rate']:.2f} | {low:.2f}-{high:.2f} | "
            f"{verdicts} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
