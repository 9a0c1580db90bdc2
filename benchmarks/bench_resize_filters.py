"""Does a cloak aimed at the mimic's shrink hold when the mimic resizes with another filter?

Our test mimic shrinks what it scrapes with torch's antialiased bicubic (``resize_for_mimic``), the same
arithmetic as the cloak's views. Training tools resize otherwise: diffusers' scripts through
``transforms.Resize`` (PIL bilinear), kohya's sd-scripts with OpenCV's ``INTER_AREA`` (an area average: PIL's
box filter), many others with PIL's Lanczos. For each cloak (paired with its clean work by file name) this
shrinks the clean work and the cloak to ``--long-side`` with each PIL filter and compares the change that
filter keeps with the change the mimic's own resize keeps: the cosine between the two and the ratio of their
sizes (1.00 and 1.00: the same change). With ``--write DIR`` it also writes the cloaks shrunk by each
filter to ``DIR/FILTER/`` (same names), for a mimic run that trains on them
(``bench_mimic_sets.py LABEL=DIR/FILTER``: a folder already at the mimic's size is not resized again).

    .venv/bin/python benchmarks/bench_resize_filters.py /tmp/p512/clean /tmp/p512-cloaked --write /tmp/filters

No model is loaded; a few seconds per folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylecloak.evaluation.mimic import resize_for_mimic
from stylecloak.evaluation.mimicry_run import MimicryUsageError, artwork_key, load_art_folder
from stylecloak.imaging import image_to_tensor, quantize_rgb, tensor_to_image

# The filters of the tools named above; PIL's bicubic as a check that PIL and torch agree where they should.
PIL_FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "box": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
}


def shrink_with_pil(image: Image.Image, long_side: int, resample: Image.Resampling) -> Image.Image:
    """Shrink (never enlarge) so that the long side is ``long_side``, sized as ``resize_for_mimic`` sizes it."""
    if max(image.size) <= long_side:
        return image
    scale = long_side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample)


def as_pil(image: torch.Tensor) -> Image.Image:
    """A 1x3xHxW tensor in [0, 1] as the 8-bit image a file holds."""
    return Image.fromarray(quantize_rgb(tensor_to_image(image)))


def as_tensor(image: Image.Image) -> torch.Tensor:
    return image_to_tensor(np.asarray(image, dtype=np.float32) / 255)


def change_agreement(change: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """How much of ``reference`` (a cloak's change as one resize keeps it) ``change`` keeps: the cosine between
    the two and the ratio of their sizes (1.00 and 1.00: the same change)."""
    cosine = float((change * reference).sum() / (change.norm() * reference.norm() + 1e-12))
    return cosine, float(change.norm() / (reference.norm() + 1e-12))


def table_row(label: str, values: list[tuple[float, float]]) -> str:
    """One row of the printed table: the mean and lowest cosine, and the mean size ratio."""
    table = np.array(values)
    return f"{label:9s} | {table[:, 0].mean():.3f}, {table[:, 0].min():.3f} | {table[:, 1].mean():.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clean", type=Path, help="the clean works")
    parser.add_argument("cloaked", type=Path, help="their cloaks (a.png or a.cloaked.png)")
    parser.add_argument("--long-side", type=int, default=128, help="the mimic's training size (default 128)")
    parser.add_argument("--write", type=Path, help="write the cloaks shrunk by each filter to WRITE/FILTER/")
    args = parser.parse_args()
    clean_images, clean_names = load_art_folder(args.clean)
    cloaked_images, cloaked_names = load_art_folder(args.cloaked)
    clean_by_key = {artwork_key(Path(name)): image for name, image in zip(clean_names, clean_images)}
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in PIL_FILTERS}
    for name, cloak in zip(cloaked_names, cloaked_images):
        key = artwork_key(Path(name))
        if key not in clean_by_key:
            raise SystemExit(f"bench_resize_filters.py: {name}: no clean work of that name in {args.clean}")
        clean = clean_by_key[key]
        # Through 8 bits as the files hold them, so PIL and torch start from the same pixels.
        clean_pil, cloak_pil = as_pil(clean), as_pil(cloak)
        mimic_change = resize_for_mimic(as_tensor(cloak_pil), args.long_side) - resize_for_mimic(
            as_tensor(clean_pil), args.long_side
        )
        for filter_name, resample in PIL_FILTERS.items():
            shrunk_cloak = shrink_with_pil(cloak_pil, args.long_side, resample)
            change = as_tensor(shrunk_cloak) - as_tensor(shrink_with_pil(clean_pil, args.long_side, resample))
            rows[filter_name].append(change_agreement(change, mimic_change))
            if args.write:
                folder = args.write / filter_name
                folder.mkdir(parents=True, exist_ok=True)
                shrunk_cloak.save(folder / f"{Path(name).stem}.png")
    print(f"{len(cloaked_names)} cloaks, shrunk to a long side of {args.long_side} px")
    print("filter    | cosine with the mimic's resize (mean, lowest) | size ratio (mean)")
    for filter_name, values in rows.items():
        print(table_row(filter_name, values))


if __name__ == "__main__":
    try:
        main()
    except MimicryUsageError as error:  # a missing folder: one line, not a traceback
        raise SystemExit(f"bench_resize_filters.py: {error}") from None
