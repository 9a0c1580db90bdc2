"""What a latent mimic can learn of each training set: the target progress of the latents and of the decoder's
image of them, both at the mimic's size.

A latent mimic (``stylecloak mimic``: TAEF2 latents of the art shrunk to 128 px) can at best reproduce the
decoder's image of the latents it learned. A cloak may move the latents toward the target in directions the
decoder ignores; a pixel blend with the target moves both. For each folder of training images (cloaks, blends),
paired with the clean works by file name, this prints the medians of:

- ``latent``: ``target_progress`` of the latents at the mimic's size (the figure the cloak reports give);
- ``decoded``: the same for the decoder's images of those latents (``metrics.decoded_target_progress``);
- ``gram``: the same for the style statistics of those images (``metrics.decoded_gram_progress``: Gram
  matrices of the LPIPS network's first --gram-layers layers, the figure of the ``decoded-gram`` view objective);
- ``judge``: the same for the style features the Gram judge of ``stylecloak mimic`` reads (VGG16 Gram
  statistics, ``nst_mimic.style_source_progress``; ``stylecloak evaluate``'s ``style_transfer_progress`` at
  the 128 px mimic), which the style-transfer attack also matches. A measurement only: no
  cloak is ever optimised through the judge's network. How much of ``gram`` reaches ``judge`` says whether a
  move is the style's or only the optimised network's;
- ``judge pooled``: ``judge`` of the set as the style-transfer attack pools it, the mean features of all the
  works (``nst_mimic.pooled_style_source_progress``), with the lowest work's ``judge`` beside the median: a
  work that barely moves pulls back what the transfer copies, and a median hides it.

The target of each work is rendered as ``stylecloak cloak`` renders it (--target, seed 0, on the clean work as
posted). Seconds per set on a CPU.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_decoded_view.py \\
        --clean /tmp/mim-512/clean default=/tmp/mim512-eot/cloaked blend30=/tmp/resp512b/blend30
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from stylecloak.evaluation.mimic import MimicConfig, resize_for_mimic
from stylecloak.evaluation.mimicry_run import artwork_key, load_art_folder
from stylecloak.evaluation.nst_mimic import pooled_style_source_progress, style_source_progress
from stylecloak.imaging import quantize_8bit
from stylecloak.metrics import decoded_gram_progress, latent_and_decoded_progress
from stylecloak.models.encoders import load_encoder
from stylecloak.models.lpips import load_lpips, load_vgg16_features
from stylecloak.models.weights import user_cache_dir
from stylecloak.settings import VIEW_GRAM_LAYERS
from stylecloak.targets import get_target
from stylecloak.targets.cache import render_cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", metavar="LABEL=FOLDER", help="training sets, paired by file name")
    parser.add_argument("--clean", type=Path, required=True, help="the clean works as posted")
    parser.add_argument("--target", default="ink-hatching")
    parser.add_argument("--mimic-size", type=int, default=MimicConfig().image_size, help="the mimic's long side")
    parser.add_argument(
        "--gram-layers",
        type=int,
        default=VIEW_GRAM_LAYERS,
        help=f"the LPIPS network's first layers the gram column compares (default: {VIEW_GRAM_LAYERS}, as the "
        "decoded-gram objective's view_gram_layers)",
    )
    args = parser.parse_args()
    device = torch.device("cpu")
    encoder = load_encoder("taef2", device)
    perceptual = load_lpips("alex", device)
    judge_vgg = load_vgg16_features(device)
    style = get_target(args.target)
    clean, names = load_art_folder(args.clean)
    works = {}
    for name, image in zip(names, clean):
        target = render_cached(style, quantize_8bit(image), 0, user_cache_dir() / "targets")
        works[artwork_key(Path(name))] = (image, target)
    print(f"{len(works)} works, mimic at {args.mimic_size} px, target {args.target}")
    for label, _, folder in (text.partition("=") for text in args.sets):
        images, set_names = load_art_folder(Path(folder))
        rows, triples = [], []
        for name, image in zip(set_names, images):
            original, target = works[artwork_key(Path(name))]
            small = [resize_for_mimic(x, args.mimic_size) for x in (original, image, target)]
            triples.append(tuple(small))
            # The latents' and the decoder's figures from one encode of each image.
            rows.append(
                (
                    *latent_and_decoded_progress(encoder, *small),
                    decoded_gram_progress(encoder, perceptual, *small, layers=args.gram_layers),
                    style_source_progress(encoder, judge_vgg, *small, image_size=args.mimic_size),
                )
            )
        latent, decoded, gram, judge = (statistics.median(row[i] for row in rows) for i in range(4))
        pooled = pooled_style_source_progress(encoder, judge_vgg, triples, image_size=args.mimic_size)
        print(
            f"{label}: {len(rows)} images, latent {latent:.3f}, decoded {decoded:.3f}, gram {gram:.3f}, "
            f"judge {judge:.3f} (lowest {min(row[3] for row in rows):.3f}), judge pooled {pooled:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
