"""The style-transfer attack's judge, reading what the attack would copy from each training set: about two
minutes on a CPU instead of a 20-minute `stylecloak mimic --attack nst` run per set and seed.

`stylecloak mimic --attack nst` copies the mean Gram statistics of the decoder's images of the artist's works
(shrunk to 128 px) onto other contents, and its Gram judge (fitted on the clean works at that size, the other
styles and, as here, their renditions in every catalogue style) says whose style the transfers show. For the
clean works and for each set of cloaks (paired with the clean works by file name) this prints:

- ``P(artist)``: the judge's probability of the artist's class for the mean style features of the set, as the
  attack pools them (``nst_mimic.pooled_style_artist_probability``);
- ``pooled``: the way toward the target of the same mean features (``nst_mimic.pooled_style_source_progress``).

``pooled`` asks how far toward the target; the judge asks how far from the artist against all its classes.
On the prints (docs/protection.md, 2026-12-06) two sets with equal ``pooled`` (0.285 posted at 256 px, 0.286
at 512 px) gave the transfer 0.50 and 0.33, and ``P(artist)`` told them apart in that order. A diagnostic of
one judge: the differences between designs are thousandths, and no rate follows from it.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_judge_reading.py \\
        --posted /tmp/p512 --target pop-art split=/tmp/p512-w035 style=/tmp/p512-g2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from stylecloak.evaluation.attack import fit_judge_on_images, rendition_classes
from stylecloak.evaluation.mimic import resize_classes, resize_for_mimic
from stylecloak.evaluation.mimicry_run import (
    MimicryUsageError,
    artwork_key,
    gram_judge,
    load_art_folder,
    load_other_styles,
)
from stylecloak.evaluation.nst_mimic import (
    NSTMimicConfig,
    pooled_style_artist_probability,
    pooled_style_source_progress,
)
from stylecloak.imaging import quantize_8bit
from stylecloak.models.encoders import load_encoder
from stylecloak.models.weights import user_cache_dir
from stylecloak.targets import available_targets, get_target
from stylecloak.targets.cache import render_cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", metavar="LABEL=FOLDER", help="cloaked sets, paired by file name")
    parser.add_argument(
        "--posted", type=Path, required=True, help="a posted folder (clean/ and others/ with manifest.csv)"
    )
    parser.add_argument("--target", default="pop-art", help="the cloaks' target, for the pooled column")
    parser.add_argument("--seed", type=int, default=0, help="the renditions' seed, as `stylecloak mimic --seed`")
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device("cpu")
    size = NSTMimicConfig.image_size
    encoder = load_encoder("taef2", device)
    clean, names = load_art_folder(args.posted / "clean")
    others = load_other_styles(args.posted / "others", frozenset(artwork_key(Path(name)) for name in names))
    renditions = rendition_classes(others, available_targets(), seed=args.seed)
    judge, judge_name = gram_judge("linear", device)
    sanity = fit_judge_on_images(
        judge,
        [resize_for_mimic(image, size) for image in clean],
        resize_classes(others, size),
        resize_classes(renditions, size),
    )
    print(
        f"judge {judge_name} with renditions: sanity {sanity:.2f}, {len(judge.labels)} classes, "
        f"{time.perf_counter() - started:.0f} s to fit"
    )
    style = get_target(args.target)
    targets = {
        artwork_key(Path(name)): render_cached(style, quantize_8bit(image), 0, user_cache_dir() / "targets")
        for name, image in zip(names, clean)
    }
    originals = {artwork_key(Path(name)): image for name, image in zip(names, clean)}

    def report(label: str, works: dict[str, torch.Tensor]) -> None:
        keys = sorted(works)
        reading = pooled_style_artist_probability(encoder, judge, [works[key] for key in keys], size)
        pooled = pooled_style_source_progress(
            encoder, judge.extractor.vgg, [(originals[key], works[key], targets[key]) for key in keys], size
        )
        print(f"{label:>14s}: {len(keys)} works, P(artist) {reading:.3f}, pooled {pooled:.3f}", flush=True)

    report("clean", originals)
    for label, _, folder in (text.partition("=") for text in args.sets):
        images, set_names = load_art_folder(Path(folder))
        works = {artwork_key(Path(name)): image for name, image in zip(set_names, images)}
        missing = sorted(set(works) - set(originals))
        if missing:
            raise SystemExit(f"{label}: no clean work for {', '.join(missing)}")
        report(label, works)
    print(f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    try:
        main()
    except MimicryUsageError as error:  # a missing or unreadable folder: one line, not a traceback
        raise SystemExit(f"bench_judge_reading.py: {error}") from None
