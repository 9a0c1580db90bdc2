"""How long each built-in target rendition takes on a large image (the target-styles issue: "a few seconds for a
2048 px image").

    .venv/bin/python benchmarks/bench_render_speed.py --long-side 2048 --repeats 3

Renders the shared Great Wave, resized so that its long side is ``--long-side``, with every rendition, and prints
the median wall time of ``--repeats`` runs per rendition as a Markdown table. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylecloak.imaging import image_to_tensor
from stylecloak.targets import available_targets

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings" / "hokusai_great_wave.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--long-side", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    with Image.open(args.image) as im:
        im = im.convert("RGB")
        scale = args.long_side / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    image = image_to_tensor(np.asarray(im, dtype=np.float32) / 255.0)
    print(
        f"{args.image.name} at {im.width}x{im.height}, median of {args.repeats} runs "
        f"({platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__})\n"
    )
    print("| rendition | seconds |")
    print("|---|---|")
    for target in available_targets():
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            target.render(image, seed=0)
            times.append(time.perf_counter() - started)
        print(f"| {target.name} | {statistics.median(times):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
