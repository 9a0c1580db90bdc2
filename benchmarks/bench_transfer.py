"""How long a reference-image target takes to render, with and without the fine pass at the image's own size.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_transfer.py
    ... --image hokusai_great_wave.png --references kandinsky_composition_viii.png vangogh_village_street_auvers.png

The references are shared paintings (loaded at 256 px, as `--target-images` loads them); the image is rendered
at its own size once with ``refine_steps=0`` (the coarse pass only) and once with the default fine pass.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from stylecloak.imaging import image_to_tensor, load_image
from stylecloak.models.lpips import load_vgg16_features
from stylecloak.targets.transfer import ReferenceStyleTransfer, load_reference_images, reference_transfer

PAINTINGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="hokusai_great_wave.png")
    parser.add_argument(
        "--references", nargs="+", default=["kandinsky_composition_viii.png", "vangogh_village_street_auvers.png"]
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.references:
            shutil.copy(PAINTINGS / name, Path(tmp) / name)
        references = load_reference_images(tmp)
    vgg = load_vgg16_features("cpu")
    image = image_to_tensor(load_image(PAINTINGS / args.image).rgb)
    for steps in (0, ReferenceStyleTransfer.refine_steps):
        transfer = reference_transfer(vgg, references, refine_steps=steps)
        started = time.perf_counter()
        transfer.render(image)
        print(
            f"{args.image} {image.shape[-1]}x{image.shape[-2]}, refine_steps={steps}: {time.perf_counter() - started:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
