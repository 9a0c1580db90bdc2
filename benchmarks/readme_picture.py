"""The README's picture: a procedurally painted scene (no real artwork is committed), its cloak at the command
line's defaults, what the model sees in the cloak, and a 3x zoom of the smooth sky with the change amplified.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/readme_picture.py -o docs/images/first-look.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from stylecloak.evaluation.evaluate import model_view_pair
from stylecloak.imaging import image_to_tensor
from stylecloak.pipeline import Cloaker
from stylecloak.settings import CloakSettings


def painted_scene(width: int = 384, height: int = 256, seed: int = 0) -> np.ndarray:
    """A smooth sky over a sea of brush strokes, with a sun: flat areas beside busy ones, as in many paintings."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.stack([0.55 + 0.35 * y / height, 0.70 + 0.15 * y / height, 0.92 - 0.10 * y / height], axis=-1)
    image = np.broadcast_to(sky, (height, width, 3)).copy()
    sun = (x - 0.72 * width) ** 2 + (y - 0.28 * height) ** 2 < (0.08 * height) ** 2
    image[sun] = [0.98, 0.86, 0.55]
    horizon = int(0.55 * height)
    for _ in range(1400):  # short, curved strokes of blue and white on the sea
        cx, cy = rng.uniform(0, width), rng.uniform(horizon, height)
        length, angle = rng.uniform(6, 22), rng.normal(0, 0.25)
        colour = (
            np.array([0.10, 0.25, 0.55]) + rng.normal(0, 0.08, 3) if rng.random() < 0.8 else np.array([0.9, 0.93, 0.95])
        )
        for t in np.linspace(0, 1, int(length)):
            px = int(cx + t * length * np.cos(angle))
            py = int(cy + t * length * np.sin(angle) + 2 * np.sin(6 * t))
            if 0 <= px < width and horizon <= py < height:
                image[max(horizon, py - 1) : py + 1, px : px + 2] = np.clip(colour, 0, 1)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/images/first-look.png"))
    args = parser.parse_args(argv)
    scene = painted_scene()
    cloaker = Cloaker(CloakSettings.from_presets("medium", "default", target="ink-hatching"), cache_targets=False)
    cloaked, report = cloaker.cloak_rgb(scene.astype(np.float32) / 255)
    original_t, cloaked_t = image_to_tensor(scene / 255.0), image_to_tensor(cloaked / 255.0)
    _, seen_cloaked = model_view_pair(cloaker.encoder, original_t.float(), cloaked_t.float())
    crop = (slice(20, 84), slice(40, 168))  # smooth sky
    zoom = lambda a: np.kron(a, np.ones((3, 3, 1), dtype=np.uint8))  # noqa: E731
    difference = np.clip(128 + 4 * (cloaked.astype(int) - scene.astype(int)), 0, 255).astype(np.uint8)
    top = [scene, cloaked, seen_cloaked]
    bottom = [zoom(scene[crop]), zoom(cloaked[crop]), zoom(difference[crop])]
    labels_top = ["original", "cloaked (medium)", "what the model sees in the cloaked image"]
    labels_bottom = ["sky at 300%: original", "sky at 300%: cloaked", "the change x4 (grey: none)"]
    gap, band = 8, 16
    width = sum(p.shape[1] for p in top) + 2 * gap
    height = band + top[0].shape[0] + gap + band + bottom[0].shape[0]
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for picture, label in zip(top, labels_top):
        sheet.paste(Image.fromarray(picture), (x, band))
        draw.text((x + 2, 2), label, fill="black")
        x += picture.shape[1] + gap
    x, y = 0, band + top[0].shape[0] + gap
    for picture, label in zip(bottom, labels_bottom):
        sheet.paste(Image.fromarray(picture), (x, y + band))
        draw.text((x + 2, y + 2), label, fill="black")
        x += picture.shape[1] + gap
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, optimize=True)
    print(
        f"{args.output}: lpips {report.lpips:.4f}, ssim {report.ssim:.3f}, worst 64 px window ssim "
        f"{report.ssim_window_min:.3f}, psnr {report.psnr:.1f} dB, largest change {report.max_change}, "
        f"target progress {report.target_progress:.3f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
