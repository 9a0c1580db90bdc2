"""The batch path's throughput: images per minute at 512 px for `stylecloak cloak DIR` and for `stylecloak batch`
with 1 and 2 Ray actors, on the same images, with the same settings.

Each run is a whole command, timed from start to finish (Python's start, Ray's start, the model loads and the
target's rendering included), so that the figures are what an operator sees. Every actor count uses all of the
machine's cores (``--cpus-per-actor = cores // actors``), as `cloak` uses them all. The outputs of the 1-actor
batch, which runs at `cloak`'s thread count, are compared byte for byte with `cloak`'s.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_batch.py --work /tmp/bench-batch --images 4
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAINTINGS = ROOT.parent / "shared" / "data" / "paintings"


def prepare(paintings: Path, count: int, long_side: int, folder: Path) -> list[Path]:
    """The first ``count`` paintings of the manifest, resized to ``long_side``, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(paintings / "manifest.csv", newline="") as stream:
        names = [row["file"] for row in csv.DictReader(stream)][:count]
    paths = []
    for name in names:
        destination = folder / name
        if not destination.exists():
            with Image.open(paintings / name) as im:
                im = im.convert("RGB")
                scale = long_side / max(im.size)
                im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS).save(destination)
        paths.append(destination)
    return paths


def timed(command: list[str]) -> float:
    print("$", " ".join(command), file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=False, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-batch"))
    parser.add_argument("--paintings", type=Path, default=DEFAULT_PAINTINGS)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--long-side", type=int, default=512)
    parser.add_argument(
        "--target",
        default="ink-hatching",
        help="one catalogue target for every run, so that no run pays for a choice the others skip",
    )
    parser.add_argument("--actors", default="1,2", help="actor counts to run (comma-separated)")
    parser.add_argument(
        "cloak_args", nargs="*", help="after --: more cloak options for every run (e.g. --quality fast)"
    )
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    source = args.work / "src"
    images = prepare(args.paintings, args.images, args.long_side, source)
    common = ["--target", args.target, *args.cloak_args]
    stylecloak = [sys.executable, "-m", "stylecloak.cli"]
    results = []
    out = args.work / "cloak"
    shutil.rmtree(out, ignore_errors=True)
    seconds = timed([*stylecloak, "cloak", str(source), "-o", str(out), *common])
    results.append(("stylecloak cloak DIR", seconds, len(list(out.glob("*.cloaked.png")))))
    identical = None
    for actors in (int(a) for a in args.actors.split(",")):
        destination = args.work / f"batch-{actors}"
        shutil.rmtree(destination, ignore_errors=True)
        per_actor = max(1, cores // actors)
        seconds = timed(
            [
                *stylecloak,
                "batch",
                str(source),
                str(destination),
                "--actors",
                str(actors),
                "--cpus-per-actor",
                str(per_actor),
                *common,
            ]
        )
        written = sorted(destination.glob("*.cloaked.png"))
        results.append((f"stylecloak batch, {actors} actor(s) x {per_actor} core(s)", seconds, len(written)))
        if per_actor == cores:  # the same thread count as `cloak`: the same bytes
            identical = all((out / p.name).read_bytes() == p.read_bytes() for p in written) and len(written) == len(
                images
            )
    print(
        f"\n{len(images)} paintings at {args.long_side} px, {' '.join(common)}; {platform.machine()}, {cores} cores, "
        f"{date.today()}\n"
    )
    print("| run | wall s | images written | images per minute |\n|---|---|---|---|")
    for name, seconds, written in results:
        print(f"| {name} | {seconds:.0f} | {written} | {60 * written / seconds:.2f} |")
    if identical is not None:
        print(f"\nbatch outputs identical to cloak's (same thread count): {identical}")
    (args.work / "results.json").write_text(
        json.dumps(
            [{"run": n, "seconds": s, "written": w} for n, s, w in results] + [{"identical": identical}], indent=1
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
