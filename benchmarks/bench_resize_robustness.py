"""Does a cloak's effect survive the resizes a real mimic makes, beyond the factors it was optimised at?

`--mimic-downscales 2,4` optimises the cloak at exactly 1/2 and 1/4 of the posted size, with the image's pixel grid
aligned to the encoder's. A real pipeline shrinks by whatever factor takes the posted size to its training size
(1500 px to 512 px is 2.93), crops at any offset (so the encoder's 8 px cells fall anywhere), and the site may
recompress the file first. This measures the median target progress of each cloaked folder under those:

- ``1x``, ``1.5x``, ``2x``, ``3x``, ``4x``: original, cloak and target shrunk alike (antialiased bicubic), as
  ``stylecloak evaluate``'s "target progress where a mimic looks", but at factors between and beyond 2 and 4;
- ``2x+shift5``: shrunk 2x, then the first 5 rows and columns cut off (a crop off the encoder's grid);
- ``jpeg75+2x``: the cloak saved as JPEG q75 (as a site would), then shrunk 2x.

Each folder's cloaks are compared with their originals (the clean folder) and the target that the cloaked
file records (rendered as `stylecloak cloak` renders it).

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_resize_robustness.py \\
        /tmp/curve/clean /tmp/curve/cloaked-medium /tmp/curve-ds/cloaked-medium
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

from stylecloak.countermeasures import jpeg
from stylecloak.evaluation.pairs import recorded_settings
from stylecloak.imaging import image_to_tensor, list_images, load_image, quantize_8bit
from stylecloak.metrics import TargetProgress
from stylecloak.models.encoders import load_encoder
from stylecloak.models.weights import user_cache_dir
from stylecloak.targets import get_target
from stylecloak.targets.cache import render_cached

FACTORS = (1.0, 1.5, 2.0, 3.0, 4.0)
SHIFT = 5  # px cut off the shrunk image: not a multiple of the encoder's 8 px cells, nor of 2 or 4


def shrink(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Shrink by ``factor`` (antialiased bicubic, as training pipelines resize), saved as 8 bits."""
    if factor == 1:
        return quantize_8bit(image)
    height, width = image.shape[-2:]
    size = (round(height / factor), round(width / factor))
    return quantize_8bit(F.interpolate(image, size=size, mode="bicubic", antialias=True, align_corners=False))


def progress(encoder, original: torch.Tensor, cloaked: torch.Tensor, target: torch.Tensor) -> float:
    return TargetProgress(encoder, original, target)(cloaked)


def measure(encoder, original: torch.Tensor, cloaked: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    row = {}
    for factor in FACTORS:
        small = [shrink(image, factor) for image in (original, cloaked, target)]
        row[f"{factor:g}x"] = progress(encoder, *small)
    small = [shrink(image, 2)[..., SHIFT:, SHIFT:] for image in (original, cloaked, target)]
    row[f"2x+shift{SHIFT}"] = progress(encoder, *small)
    row["jpeg75+2x"] = progress(encoder, shrink(original, 2), shrink(jpeg(cloaked, 75), 2), shrink(target, 2))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clean", type=Path, help="the originals")
    parser.add_argument("cloaked", nargs="+", type=Path, help="folders of their cloaks (same file names)")
    args = parser.parse_args()
    encoder = load_encoder("taef2", torch.device("cpu"))
    originals = {path.stem: path for path in list_images(args.clean)}
    print("| folder | " + " | ".join([f"{f:g}x" for f in FACTORS] + [f"2x+shift{SHIFT}", "jpeg75+2x"]) + " |")
    print("|---" * (len(FACTORS) + 3) + "|")
    for folder in args.cloaked:
        rows = []
        for path in list_images(folder):
            stem = path.stem.removesuffix(".cloaked")
            if stem not in originals:
                continue
            recorded = recorded_settings(path)  # the target and seed the file records
            style, seed = get_target(recorded["target"]), recorded.get("seed", 0)
            original = quantize_8bit(image_to_tensor(load_image(originals[stem]).rgb))
            cloaked = quantize_8bit(image_to_tensor(load_image(path).rgb))
            target = render_cached(style, original, seed, user_cache_dir() / "targets")
            rows.append(measure(encoder, original, cloaked, target))
        medians = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        print(f"| {folder} ({len(rows)}) | " + " | ".join(f"{v:.3f}" for v in medians.values()) + " |", flush=True)


if __name__ == "__main__":
    main()
