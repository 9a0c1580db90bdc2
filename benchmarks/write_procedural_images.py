"""Write procedural images of :mod:`stylecloak.models.synthetic_art` as PNG files, for runs that need them on disk.

The "far target" run of docs/protection.md gives 12 of them to ``--target-images``: a target style that was
never a painting, and so never a class of the mimic's judge. The same seed writes the same images anywhere.

    .venv/bin/python benchmarks/write_procedural_images.py --count 12 --long-side 256 --seed 7 --out /tmp/s9/synth-refs
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stylecloak.imaging import quantize_rgb, save_image, tensor_to_image
from stylecloak.models.synthetic_art import synthetic_paintings


def write_procedural_images(out: Path, count: int, long_side: int, seed: int) -> list[Path]:
    """Write ``count`` images as ``procedural_SEED_INDEX.png`` in ``out`` (created); never overwrites a file."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"procedural_{seed}_{index:03d}.png" for index in range(count)]
    existing = [path.name for path in paths if path.exists()]
    if existing:
        raise FileExistsError(f"{out} already holds {existing[0]}; choose an empty folder")
    for path, image in zip(paths, synthetic_paintings(count, long_side, seed)):
        save_image(path, quantize_rgb(tensor_to_image(image)))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=12, help="how many images (default 12)")
    parser.add_argument("--long-side", type=int, default=256, help="long side in pixels (default 256)")
    parser.add_argument(
        "--seed", type=int, default=7, help="the generator's seed (default 7, as in the far-target run)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write into (created; must not hold them)")
    args = parser.parse_args()
    try:
        paths = write_procedural_images(args.out, args.count, args.long_side, args.seed)
    except (ValueError, OSError) as error:  # a count or size out of range, a used or unwritable folder: one line
        raise SystemExit(f"write_procedural_images: {error}") from None
    print(f"wrote {len(paths)} images to {args.out}")


if __name__ == "__main__":
    main()
