"""How much of the target must the mimic see before its images stop looking like the artist's?

A ceiling for every cloak that works by moving the encoder toward a target image (ours, Glaze's): train the
quick mimic on the artist's works REPLACED by their target renditions (what a perfect, unlimited cloak would make
the encoder see), and on pixel blends of each work with its rendition (a visible, partial move toward it). The
judges' protection success rate on each set, beside the set's target progress at full size and at the mimic's
size (1/2), maps the mimic's response: which progress where the mimic looks buys which protection. No blend is
invisible (their LPIPS is printed); they are a measuring rod, not a cloak.

The art: the manifest's --artist-style works posted at --long-side (256 px), the other styles as
bench_protection_curve.py posts them; the target: --target (default ink-hatching, the one `auto` chooses for
the ukiyo-e prints), rendered as `stylecloak cloak` renders it (seed 0).

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_mimic_response.py --work /tmp/response
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from bench_mimic_sets import mimic_over_sets
from bench_protection_curve import PAINTINGS, post

from stylecloak.evaluation.mimicry_run import artwork_key, load_art_folder, load_other_styles
from stylecloak.imaging import quantize_8bit, quantize_rgb, save_image, tensor_to_image
from stylecloak.metrics import lpips_distance, progress_by_scale
from stylecloak.models.encoders import load_encoder
from stylecloak.models.lpips import load_lpips
from stylecloak.models.weights import user_cache_dir
from stylecloak.targets import get_target
from stylecloak.targets.cache import render_cached

BLENDS = "1,0.5,0.25"  # the share of the rendition in each pixel, one training set each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="a new folder for everything the run makes")
    parser.add_argument("--artist-style", default="ukiyo-e")
    parser.add_argument("--long-side", type=int, default=256)
    parser.add_argument("--target", default="ink-hatching")
    parser.add_argument(
        "--blends", default=BLENDS, help=f"the rendition's share in each pixel, one set each (default {BLENDS})"
    )
    parser.add_argument(
        "--judge-renditions",
        action="store_true",
        help="both judges also learn the other styles' works rendered in every catalogue style",
    )
    args = parser.parse_args()
    shares = [float(share) for share in args.blends.split(",")]
    if not shares or any(not 0 < share <= 1 for share in shares):
        raise SystemExit(f"--blends: shares in (0, 1], got {args.blends!r}")
    work, device = args.work, torch.device("cpu")
    started = time.perf_counter()
    post(PAINTINGS, args.artist_style, args.long_side, work / "clean", work / "others")
    clean, names = load_art_folder(work / "clean")
    style = get_target(args.target)
    renditions = [render_cached(style, quantize_8bit(x), 0, user_cache_dir() / "targets") for x in clean]
    encoder = load_encoder("taef2", device)
    lpips = load_lpips("alex", device)
    sets: dict[str, list[torch.Tensor]] = {}
    figures = {}
    for share in shares:
        label = f"blend{round(share * 100)}"
        images = [quantize_8bit((1 - share) * x + share * t) for x, t in zip(clean, renditions)]
        (work / label).mkdir()
        for name, image in zip(names, images):
            save_image(work / label / name, quantize_rgb(tensor_to_image(image)))
        scales = [progress_by_scale(encoder, x, y, t, factors=(1, 2)) for x, y, t in zip(clean, images, renditions)]
        figures[label] = {
            "lpips_median": statistics.median(lpips_distance(lpips, x, y) for x, y in zip(clean, images)),
            "progress_median": statistics.median(s["1x"] for s in scales),
            "progress_2x_median": statistics.median(s["2x"] for s in scales),
        }
        print(label, json.dumps(figures[label]), flush=True)
        sets[label] = images
    others = load_other_styles(work / "others", frozenset(artwork_key(Path(n)) for n in names))
    first_label = next(iter(sets))
    report = mimic_over_sets(clean, sets, others, encoder, work / "mimicry", args.judge_renditions)
    result = report.to_dict() | {
        "sets": figures,
        "judge_renditions": args.judge_renditions,
        "seconds": time.perf_counter() - started,
    }
    (work / "mimicry" / "report.json").write_text(json.dumps(result, indent=2))
    assert report.second_judge is not None
    print(f"judge {report.classifier}: sanity {report.classifier_sanity:.2f}, control {report.control_artist_rate:.2f}")
    print(
        f"judge {report.second_judge['name']}: sanity {report.second_judge['sanity']:.2f}, "
        f"control {report.second_judge['control_artist_rate']:.2f}"
    )
    rates = {c.condition: c for c in report.conditions}
    print("| training set | LPIPS (median) | progress full | progress 1/2 | PSR gram | PSR texture | gram verdicts |")
    print("|---|---|---|---|---|---|---|")
    row = rates["clean"]
    print(
        f"| clean | - | - | - | {row.protection_success_rate:.2f} | "
        f"{row.second_opinion['protection_success_rate']:.2f} | {row.predictions} |"
    )
    for label, f in figures.items():
        row = rates["cloaked" if label == first_label else f"cloaked:{label}"]
        print(
            f"| {label} | {f['lpips_median']:.3f} | {f['progress_median']:.3f} | {f['progress_2x_median']:.3f} | "
            f"{row.protection_success_rate:.2f} | {row.second_opinion['protection_success_rate']:.2f} | "
            f"{row.predictions} |"
        )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
