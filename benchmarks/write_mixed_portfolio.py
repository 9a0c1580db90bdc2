"""Write a portfolio in which only some works are cloaked: an artist whose older, clean works are still online.

A mimic scrapes whatever is posted. An artist who starts cloaking today has clean works online already, so the
mimic trains on a mix. This writes that mix from a folder of clean works and a folder of their cloaks: the
share ``--share`` of the works (a fraction such as 1/3) comes from the cloaks, the rest from the clean folder,
picked evenly over the works in name order (work i is cloaked where ceil((i + 1) * share) > ceil(i * share):
1/3 gives works 0, 3, 6; 2/3 gives 0, 1, 3, 4, 6, 7), so that a larger share holds every work of a smaller one.
The files are copied byte for byte under their own names; ``bench_mimic_sets.py`` then takes the folder as a set.

    .venv/bin/python benchmarks/write_mixed_portfolio.py --clean /tmp/s12/p256/clean --cloaked /tmp/s20/d256-f24 \\
        --share 1/3 --out /tmp/s22/mix33
"""

from __future__ import annotations

import argparse
import math
import shutil
from fractions import Fraction
from pathlib import Path

from stylecloak.evaluation.mimicry_run import artwork_key
from stylecloak.imaging import list_images


def cloaked_positions(count: int, share: Fraction) -> list[int]:
    """Which of ``count`` works (by position) are cloaked for ``share``: spread evenly, nested across shares."""
    if not 0 <= share <= 1:
        raise ValueError(f"the share must be between 0 and 1, got {share}")
    return [i for i in range(count) if math.ceil((i + 1) * share) > math.ceil(i * share)]


def _images_by_work(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise SystemExit(f"write_mixed_portfolio.py: {folder} is not a folder")
    return {artwork_key(path): path for path in list_images(folder)}


def write_mixed_portfolio(clean: Path, cloaked: Path, share: Fraction, out: Path) -> list[Path]:
    """Copy each work of ``clean`` into ``out`` (a new or empty folder), its cloak from ``cloaked`` for the
    works :func:`cloaked_positions` picks; returns the cloaks copied."""
    clean_works, cloaks = _images_by_work(clean), _images_by_work(cloaked)
    missing = sorted(set(clean_works) - set(cloaks))
    if missing:
        raise SystemExit(f"write_mixed_portfolio.py: {cloaked} holds no cloak of {missing[0]}")
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"write_mixed_portfolio.py: {out} is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    picked = set(cloaked_positions(len(clean_works), share))
    copied = []
    for position, (key, path) in enumerate(sorted(clean_works.items())):
        source = cloaks[key] if position in picked else path
        shutil.copyfile(source, out / source.name)
        if position in picked:
            copied.append(source)
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", type=Path, required=True, help="the artist's clean works")
    parser.add_argument("--cloaked", type=Path, required=True, help="their cloaks (NAME.cloaked.png or NAME.png)")
    parser.add_argument("--share", type=Fraction, required=True, help="the share of works cloaked, e.g. 1/3 or 0.5")
    parser.add_argument("--out", type=Path, required=True, help="a new or empty folder for the mixed portfolio")
    args = parser.parse_args()
    try:
        copied = write_mixed_portfolio(args.clean, args.cloaked, args.share, args.out)
    except ValueError as error:
        raise SystemExit(f"write_mixed_portfolio.py: {error}") from None
    print(f"{len(copied)} cloaked: {', '.join(path.name for path in copied)}; the rest clean, in {args.out}")


if __name__ == "__main__":
    main()
