"""The visibility guarantee, measured: every shared painting cloaked with the command line's defaults, at its
native size and at other long sides, and each saved file measured again from disk.

For each size, the paintings are written (resized with Lanczos, upscaled where smaller) into one folder per
artist of the manifest, ``WORK/<size>/originals/<artist>``, and each artist's folder is cloaked by
``stylecloak cloak DIR -o WORK/<size>/cloaked/<artist> --json`` exactly as that artist would run it (default
target ``auto``: one style for the portfolio). Each saved file is read back and measured: whole-image LPIPS, SSIM,
the lowest mean SSIM over 64 px windows, PSNR, the largest change, and the target progress that the command
reported on the saved file. A rerun skips the images already cloaked. ``--sheet`` draws the five worst 128 px
crops (original, cloaked, difference x4) of the run; ``--sheet-from ORIGINALS CLOAKED`` draws them for any two
folders (for example cloaks made by an earlier version).

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_visibility.py --work /tmp/visibility \\
        --sizes native,1024 --sheet /tmp/visibility/worst-crops.png
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from stylecloak.imaging import image_to_tensor, load_image
from stylecloak.metrics import ssim_map, window_means, window_starts
from stylecloak.models.lpips import load_lpips
from stylecloak.settings import INTENSITY_PRESETS, QUALITY_PRESETS, CloakSettings
from stylecloak.visibility import VisibilityBounds, VisibilityFigures, measure_visibility

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAINTINGS = ROOT.parent / "shared" / "data" / "paintings"
CROP = 128
WORST = 5


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def prepare(paintings: Path, names: list[str], size: str, folder: Path) -> list[Path]:
    """Write each painting at ``size`` ("native" or a long side in px) into ``folder``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        destination = folder / (Path(name).stem + ".png")
        if not destination.exists():
            with Image.open(paintings / name) as im:
                im = im.convert("RGB")
                if size != "native":
                    scale = int(size) / max(im.size)
                    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
                im.save(destination)
        paths.append(destination)
    return paths


def cloak(originals: list[Path], out: Path, args: argparse.Namespace) -> None:
    """Run the command line on the originals that have no cloak yet; its JSON lines go to reports.jsonl."""
    todo = [p for p in originals if not (out / f"{p.stem}.cloaked.png").exists()]
    if not todo:
        return
    command = [
        sys.executable,
        "-m",
        "stylecloak.cli",
        "cloak",
        *map(str, todo),
        "-o",
        str(out),
        "--json",
        "--intensity",
        args.intensity,
        "--quality",
        args.quality,
        *args.cloak_args,
    ]
    print("$", " ".join(command[1:]), file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "reports.jsonl", "a") as log:
        # Failures are part of the measurement (a bound that cannot be met is reported, not exceeded).
        subprocess.run(command, stdout=log, check=False)


def measure(originals: list[Path], out: Path, metric: torch.nn.Module) -> list[dict]:
    reports = {}
    if (out / "reports.jsonl").exists():
        for line in (out / "reports.jsonl").read_text().splitlines():
            if line.strip():
                report = json.loads(line)
                reports[Path(report["output"]).name] = report
    rows = []
    for original_path in originals:
        cloaked_path = out / f"{original_path.stem}.cloaked.png"
        if not cloaked_path.exists():
            rows.append({"name": original_path.stem, "error": "no output (see the command's stderr)"})
            continue
        original = image_to_tensor(load_image(original_path).rgb)
        cloaked = image_to_tensor(load_image(cloaked_path).rgb)
        figures = measure_visibility(metric, original, cloaked)
        report = reports.get(cloaked_path.name, {})
        rows.append(
            {
                "name": original_path.stem,
                "width": original.shape[-1],
                "height": original.shape[-2],
                **figures.to_dict(),
                "target": report.get("target"),
                "target_progress": report.get("target_progress"),
                "seconds": report.get("seconds"),
                "limited_by": report.get("limited_by"),
            }
        )
    return rows


def print_table(size: str, rows: list[dict], bounds: VisibilityBounds) -> dict:
    print(f"\n### {size}\n")
    print(
        "| painting | size | lpips | ssim | ssim_window_min | psnr dB | max change | target progress | s | limited by |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    good = [r for r in rows if "error" not in r]
    for r in rows:
        if "error" in r:
            print(f"| {r['name']} | | | | | | | | | {r['error']} |")
            continue
        progress = "" if r["target_progress"] is None else f"{r['target_progress']:.3f}"
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.0f}"
        print(
            f"| {r['name']} | {r['width']}x{r['height']} | {r['lpips']:.4f} | {r['ssim']:.4f} | "
            f"{r['ssim_window_min']:.4f} | {r['psnr']:.1f} | {r['max_change']} | {progress} | {seconds} | "
            f"{', '.join(r['limited_by'] or []) or '-'} |"
        )
    broken = [
        r["name"]
        for r in good
        if VisibilityFigures(r["lpips"], r["ssim"], r["ssim_window_min"], r["psnr"], r["max_change"]).violations(bounds)
    ]
    progress = [r["target_progress"] for r in good if r["target_progress"] is not None]
    summary = {
        "size": size,
        "files": len(good),
        "failed": len(rows) - len(good),
        "violations": broken,
        "max_lpips": max(r["lpips"] for r in good),
        "min_ssim": min(r["ssim"] for r in good),
        "min_ssim_window_min": min(r["ssim_window_min"] for r in good),
        "min_psnr": min(r["psnr"] for r in good),
        "max_change": max(r["max_change"] for r in good),
        "median_target_progress": statistics.median(progress) if progress else None,
        "median_seconds": statistics.median(r["seconds"] for r in good if r["seconds"] is not None),
    }
    print(
        f"\n{size}: {summary['files']} files, {summary['failed']} failed; largest lpips {summary['max_lpips']:.4f}, "
        f"lowest ssim {summary['min_ssim']:.4f}, lowest ssim_window_min {summary['min_ssim_window_min']:.4f}, "
        f"lowest psnr {summary['min_psnr']:.1f} dB, largest change {summary['max_change']}; "
        f"median target progress {summary['median_target_progress']:.3f}; median {summary['median_seconds']:.0f} s; "
        f"bounds broken on {len(broken)} files {broken}"
    )
    return summary


def worst_crops(
    pairs: list[tuple[str, Path, Path]], count: int = WORST
) -> list[tuple[float, str, Path, Path, int, int]]:
    """The ``count`` 128 px crops with the lowest mean SSIM, at most one per image."""
    found = []
    for name, original_path, cloaked_path in pairs:
        original = image_to_tensor(load_image(original_path).rgb)
        cloaked = image_to_tensor(load_image(cloaked_path).rgb)
        local = ssim_map(original, cloaked)
        means = window_means(local, CROP)
        index = int(torch.argmin(means))
        row, col = divmod(index, means.shape[1])
        top = min(window_starts(local.shape[0], CROP, CROP // 2)[row], max(0, original.shape[-2] - CROP))
        left = min(window_starts(local.shape[1], CROP, CROP // 2)[col], max(0, original.shape[-1] - CROP))
        found.append((float(means.min()), name, original_path, cloaked_path, top, left))
    return sorted(found)[:count]


def contact_sheet(pairs: list[tuple[str, Path, Path]], destination: Path, title: str) -> None:
    """Original, cloaked and 4x difference of the worst crops, each shown at 2x (pixels as they are)."""
    crops = worst_crops(pairs)
    zoom, label = 2, 18
    cell = CROP * zoom
    sheet = Image.new("RGB", (3 * cell + 4 * 8, len(crops) * (cell + label + 8) + label + 8), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((8, 4), title, fill="black")
    for i, (value, name, original_path, cloaked_path, top, left) in enumerate(crops):
        y = label + 8 + i * (cell + label + 8)
        original = np.asarray(Image.open(original_path).convert("RGB"), dtype=np.int16)[
            top : top + CROP, left : left + CROP
        ]
        cloaked = np.asarray(Image.open(cloaked_path).convert("RGB"), dtype=np.int16)[
            top : top + CROP, left : left + CROP
        ]
        difference = np.clip(128 + 4 * (cloaked - original), 0, 255)
        draw.text(
            (8, y),
            f"{name} at ({left}, {top}): mean SSIM of this crop {value:.3f}; original | cloaked | difference x4",
            fill="black",
        )
        for j, part in enumerate((original, cloaked, difference)):
            tile = Image.fromarray(part.astype(np.uint8)).resize(
                (part.shape[1] * zoom, part.shape[0] * zoom), Image.NEAREST
            )
            sheet.paste(tile, (8 + j * (cell + 8), y + label))
    destination.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(destination)
    print(f"contact sheet of the {len(crops)} worst {CROP} px crops: {destination}", file=sys.stderr)


def folder_pairs(originals: Path, cloaked: Path) -> list[tuple[str, Path, Path]]:
    """(name, original, cloak) for every ``NAME.cloaked.png`` under ``cloaked`` (sub-folders too) whose original
    is at the same place under ``originals``, or directly in it."""
    pairs = []
    for path in sorted(cloaked.rglob("*.cloaked.png")):
        name = path.name[: path.name.index(".cloaked.")]
        folders = [originals / path.parent.relative_to(cloaked), originals]
        found = [
            f / f"{name}{suffix}"
            for f in folders
            for suffix in (".png", ".jpg", ".jpeg")
            if (f / f"{name}{suffix}").exists()
        ]
        if found:
            pairs.append((name, found[0], path))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paintings", type=Path, default=DEFAULT_PAINTINGS)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/visibility"))
    parser.add_argument("--sizes", default="native,1024", help="comma-separated: native and/or long sides in px")
    parser.add_argument("--intensity", default="medium", choices=list(INTENSITY_PRESETS))
    parser.add_argument("--quality", default="default", choices=list(QUALITY_PRESETS))
    parser.add_argument("--limit", type=int, default=0, help="only the first N paintings of the manifest (0: all)")
    parser.add_argument(
        "--artists",
        default="",
        help="only these portfolios (comma-separated folder names, e.g. "
        "katsushika-hokusai); a second process can take other artists",
    )
    parser.add_argument("--sheet", type=Path, help="write the contact sheet of the worst crops here")
    parser.add_argument(
        "--sheet-from",
        nargs=2,
        type=Path,
        metavar=("ORIGINALS", "CLOAKED"),
        help="only draw the contact sheet for two folders, then stop",
    )
    parser.add_argument("cloak_args", nargs="*", help="after --: more options for `stylecloak cloak`")
    args = parser.parse_args(argv)
    if args.sheet_from:
        destination = args.sheet or Path("worst-crops.png")
        contact_sheet(folder_pairs(*args.sheet_from), destination, f"worst {CROP} px crops: {args.sheet_from[1]}")
        return 0

    with open(args.paintings / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    manifest = manifest[: args.limit] if args.limit else manifest
    portfolios: dict[str, list[str]] = {}
    for row in manifest:
        if not args.artists or slug(row["artist"]) in args.artists.split(","):
            portfolios.setdefault(slug(row["artist"]), []).append(row["file"])
    bounds = CloakSettings.from_presets(args.intensity).bounds  # the bounds the command line will use
    metric = load_lpips("alex")
    summaries, all_pairs = [], []
    for size in args.sizes.split(","):
        rows = []
        for artist, names in portfolios.items():
            originals = prepare(args.paintings, names, size, args.work / size / "originals" / artist)
            out = args.work / size / "cloaked" / artist
            cloak(originals, out, args)
            rows += measure(originals, out, metric)
            all_pairs += [(f"{name} ({size})", o, c) for name, o, c in folder_pairs(originals[0].parent, out)]
        summaries.append(print_table(size, rows, bounds))
    print(
        f"\n{len(manifest)} paintings in {len(portfolios)} portfolios (one per artist), intensity {args.intensity} (bounds: {bounds}), quality {args.quality}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, {date.today()}"
    )
    (args.work / "summary.json").write_text(json.dumps(summaries, indent=1))
    if args.sheet:
        contact_sheet(all_pairs, args.sheet, f"worst {CROP} px crops, stylecloak {args.intensity}/{args.quality}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
