"""Other judges on the same mimic: re-judge the sample grids that a bench_mimicry.py run saved.

The mimic's protection success rate is one judge's verdict. This asks others, on the very samples the mimic
made (cut back out of WORK/mimicry/samples_*.png and control_*.png, 8-bit as saved):
- gram:       the run's own judge (VGG16 Gram features, linear head): should reproduce the report's rates;
- gram+rend:  the same, with classes for "a different style": the other styles' works rendered in each
              catalogue style (never the artist's works);
- texture:    an independent judge on luminance texture statistics (no VGG, no colour);
- texture+rend.
Each judge is trained as the attack trains its judge (round trips of crops at the mimic's size), checked on
the artist's own crops (sanity) and on the clean mimic's images of the other styles (control: the share it
calls the artist's), then asked about every condition's samples.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_judges.py /tmp/mimicry-default /tmp/mim-ds

Several work folders share each judge when they hold the same clean art and other styles (the same paintings
at the same size: checked), so that each judge is trained once.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylecloak.evaluation.attack import (
    ARTIST_LABEL,
    RENDITION_PREFIX,
    fit_judge_on_round_trips,
    rendition_classes,
    samples_file_name,
)
from stylecloak.evaluation.classifier import FeatureStyleClassifier
from stylecloak.evaluation.mimic import MIMIC_PRESETS, resize_for_mimic
from stylecloak.evaluation.mimicry_run import artwork_key, gram_judge, load_art_folder, load_other_styles
from stylecloak.evaluation.texture_features import TextureFeatureExtractor
from stylecloak.models.encoders import load_encoder
from stylecloak.targets import available_targets


def grid_tiles(path: Path, tile: int) -> list[torch.Tensor]:
    """The samples of a saved grid (white cells past the last sample left out)."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    tiles = []
    for top in range(0, pixels.shape[0], tile):
        for left in range(0, pixels.shape[1], tile):
            cell = pixels[top : top + tile, left : left + tile]
            if cell.shape[:2] == (tile, tile) and cell.min() < 0.999:
                tiles.append(torch.from_numpy(cell.copy()).permute(2, 0, 1)[None])
    return tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, nargs="+", help="bench_mimicry.py work folders")
    parser.add_argument(
        "--judges",
        default="gram,gram+rend,texture,texture+rend",
        help="which judges to train and ask, comma-separated (default: all four)",
    )
    args = parser.parse_args()
    device, config = torch.device("cpu"), MIMIC_PRESETS["quick"]
    encoder = load_encoder("taef2", device)
    first = args.work[0]
    clean, names = load_art_folder(first / "clean")
    others = load_other_styles(first / "others", frozenset(artwork_key(Path(n)) for n in names))
    for work in args.work[1:]:  # one judge serves every folder only if they share the art it is trained on
        same, _ = load_art_folder(work / "clean")
        if len(same) != len(clean) or any(not torch.equal(a, b) for a, b in zip(same, clean)):
            raise SystemExit(f"{work}: other clean art than {first}; run it on its own")
    small = lambda images: [resize_for_mimic(image, config.image_size) for image in images]  # noqa: E731
    clean, others = small(clean), {label: small(images) for label, images in others.items()}
    renditions = rendition_classes(others, available_targets())
    runs = {}
    for work in args.work:
        report = json.loads((work / "mimicry" / "report.json").read_text())
        samples = {
            c["condition"]: grid_tiles(work / "mimicry" / samples_file_name(c["condition"]), config.crop)
            for c in report["conditions"]
        }
        controls = [t for p in sorted((work / "mimicry").glob("control_*.png")) for t in grid_tiles(p, config.crop)]
        runs[work] = (samples, controls)
        rates = ", ".join(f"{c['condition']} {c['protection_success_rate']:.2f}" for c in report["conditions"])
        print(f"{work}: the report's rates: {rates}", flush=True)
    judges = {
        "gram": (lambda: gram_judge("linear", device)[0], None),
        "gram+rend": (lambda: gram_judge("linear", device)[0], renditions),
        "texture": (lambda: FeatureStyleClassifier(TextureFeatureExtractor(), "linear"), None),  # type: ignore[arg-type]
        "texture+rend": (lambda: FeatureStyleClassifier(TextureFeatureExtractor(), "linear"), renditions),  # type: ignore[arg-type]
    }
    wanted = [name.strip() for name in args.judges.split(",") if name.strip()]
    if unknown := [name for name in wanted if name not in judges]:
        raise SystemExit(f"unknown judge(s) {', '.join(unknown)}; choose from {', '.join(judges)}")
    for name in wanted:
        make, extra = judges[name]
        started = time.perf_counter()
        judge = make()
        sanity = fit_judge_on_round_trips(judge, clean, others, encoder, device, config, extra)
        for work, (samples, controls) in runs.items():
            control = judge.predict(controls)
            cells = []
            for condition, tiles in samples.items():
                verdicts = judge.predict(tiles)
                rate = sum(v != ARTIST_LABEL for v in verdicts) / len(verdicts)
                renditions_share = sum(v.startswith(RENDITION_PREFIX) for v in verdicts) / len(verdicts)
                cells.append(f"{condition} {rate:.2f}" + (f" (renditions {renditions_share:.2f})" if extra else ""))
            control_rate = sum(v == ARTIST_LABEL for v in control) / len(control)
            print(f"  {name:13s} {work.name}: sanity {sanity:.2f}, control {control_rate:.2f} | " + ", ".join(cells))
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
