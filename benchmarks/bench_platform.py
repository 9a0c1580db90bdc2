"""What is left of a cloak after the platform it is posted to: a resize to the display size and a JPEG re-encode.

An artist uploads at one size; most platforms keep a copy shrunk to their display size and re-encoded as JPEG,
and that copy is what a scraper takes. A mimic then shrinks it again to its training size. For each cloak
(paired with its clean work by file name) this makes the platform's copy of both (a PIL resize to
``--display-side`` with ``--filter``, then JPEG at ``--jpeg``), shrinks both to the mimic's ``--mimic-side``
as the mimic does (``resize_for_mimic``), and compares the change that survives with the change the mimic
would see scraping the posted file itself: the cosine between the two and the ratio of their sizes (1.00 and
1.00: the platform took nothing). With ``--write DIR`` it writes the platform's copies, ``DIR/clean/`` and
``DIR/LABEL/`` (same names), for a mimic run that trains on them
(``bench_mimic_sets.py --clean DIR/clean LABEL=DIR/LABEL``); with no sets it only copies the clean works (the
other styles' folder, whose manifest.csv is copied with them, so the judge sees every style as served).

    .venv/bin/python benchmarks/bench_platform.py /tmp/p512/clean x4=/tmp/d512-x4 --display-side 256 \
        --jpeg 85 --write /tmp/platform

No model is loaded; a few seconds per folder.
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

import torch
from bench_resize_filters import PIL_FILTERS, as_pil, as_tensor, change_agreement, shrink_with_pil, table_row
from PIL import Image

from stylecloak.evaluation.mimic import resize_for_mimic
from stylecloak.evaluation.mimicry_run import MimicryUsageError, artwork_key, load_art_folder


def platform_copy(image: Image.Image, display_side: int, resample: Image.Resampling, quality: int) -> Image.Image:
    """The copy a platform serves: shrunk (never enlarged) to ``display_side``, then re-encoded as JPEG."""
    shrunk = shrink_with_pil(image, display_side, resample)
    buffer = io.BytesIO()
    shrunk.convert("RGB").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def parse_set(text: str) -> tuple[str, Path]:
    label, sep, folder = text.partition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"expected LABEL=FOLDER, got {text!r}")
    return label, Path(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clean", type=Path, help="the clean works, as posted")
    parser.add_argument(
        "sets",
        nargs="*",
        type=parse_set,
        help="LABEL=FOLDER of cloaks (a.png or a.cloaked.png); none: copy the clean works",
    )
    parser.add_argument("--display-side", type=int, default=256, help="the platform's long side (default 256)")
    parser.add_argument("--filter", choices=sorted(PIL_FILTERS), default="lanczos", help="its resize (default lanczos)")
    parser.add_argument("--jpeg", type=int, default=85, help="its JPEG quality (default 85)")
    parser.add_argument("--mimic-side", type=int, default=128, help="the mimic's training size (default 128)")
    parser.add_argument("--write", type=Path, help="write the platform's copies to WRITE/clean/ and WRITE/LABEL/")
    args = parser.parse_args()
    if not 1 <= args.jpeg <= 100:
        raise SystemExit(f"bench_platform.py: --jpeg must be 1 to 100, got {args.jpeg}")
    resample = PIL_FILTERS[args.filter]

    def copy(image: Image.Image) -> Image.Image:
        return platform_copy(image, args.display_side, resample, args.jpeg)

    def at_mimic_size(image: Image.Image) -> torch.Tensor:
        return resize_for_mimic(as_tensor(image), args.mimic_side)

    # Each clean work's platform copy and both its shrunk versions are made once, for --write and every set.
    clean_images, clean_names = load_art_folder(args.clean)
    clean_posted, clean_copies = {}, {}
    for name, image in zip(clean_names, clean_images):
        clean_pil = as_pil(image)
        clean_copy = copy(clean_pil)
        key = artwork_key(Path(name))
        clean_posted[key], clean_copies[key] = at_mimic_size(clean_pil), at_mimic_size(clean_copy)
        if args.write:
            (args.write / "clean").mkdir(parents=True, exist_ok=True)
            clean_copy.save(args.write / "clean" / f"{Path(name).stem}.png")
    if args.write and (args.clean / "manifest.csv").is_file():
        shutil.copyfile(args.clean / "manifest.csv", args.write / "clean" / "manifest.csv")
    print(
        f"platform: {args.filter} to a long side of {args.display_side} px, JPEG {args.jpeg}; "
        f"the mimic at {args.mimic_side} px"
    )
    if args.sets:
        print(
            "set       | cosine with the posted cloak's change at the mimic's size (mean, lowest) | size ratio (mean)"
        )
    for label, folder in args.sets:
        cloaked_images, cloaked_names = load_art_folder(folder)
        rows = []
        for name, cloak in zip(cloaked_names, cloaked_images):
            key = artwork_key(Path(name))
            if key not in clean_posted:
                raise SystemExit(f"bench_platform.py: {name}: no clean work of that name in {args.clean}")
            cloak_pil = as_pil(cloak)
            cloak_copy = copy(cloak_pil)
            posted_change = at_mimic_size(cloak_pil) - clean_posted[key]
            change = at_mimic_size(cloak_copy) - clean_copies[key]
            rows.append(change_agreement(change, posted_change))
            if args.write:
                (args.write / label).mkdir(parents=True, exist_ok=True)
                cloak_copy.save(args.write / label / f"{Path(name).stem}.png")
        print(table_row(label, rows))


if __name__ == "__main__":
    try:
        main()
    except MimicryUsageError as error:  # a missing folder: one line, not a traceback
        raise SystemExit(f"bench_platform.py: {error}") from None
