"""Two quick checks of cloaks made with the experimental denoiser-aware term, each in a minute or two on a CPU:

- **the denoising loss of a second surrogate** (a file from ``stylecloak surrogate`` or bench_surrogate.py,
  ideally not the one the cloaks were made with): its unconditioned loss on the mimic's 128 px latents, the
  mean over 32 noise levels spread evenly, relative to the loss on the clean works (1.0 = as hard to denoise as
  the originals), as posted and after the acceptance run's noise-then-upscaling purification;
- **what that purification leaves of the cloak** at the mimic's size: the norm of (purified cloak - purified
  original) over the norm of (cloak - original) in pixels, the same noise on both, and the projection of the
  purified latent change on the posted one.

It is a check of the term's mechanism, not of protection: only a mimic run says what a mimic learns. The first
figure, per pair, is what ``stylecloak evaluate --surrogate FILE`` prints (stylecloak.evaluation.surrogate_figure).

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_term_check.py \\
        --surrogate /tmp/surr/surrogate-b.pt --clean /tmp/curve-dec/clean /tmp/acc-away/cloaked
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from stylecloak.countermeasures import get_countermeasure
from stylecloak.evaluation.mimic import resize_for_mimic
from stylecloak.evaluation.mimicry_run import artwork_key, load_art_folder
from stylecloak.evaluation.surrogate_figure import denoising_loss, mimic_size_latents, surrogate_term
from stylecloak.models.encoders import LatentEncoder, load_encoder
from stylecloak.models.surrogate import DenoiserTerm, load_surrogate_file

MIMIC_SIZE = 128


def mean_loss(term: DenoiserTerm, encoder: LatentEncoder, images: list[torch.Tensor]) -> float:
    return statistics.mean(denoising_loss(term, mimic_size_latents(encoder, x, MIMIC_SIZE)) for x in images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surrogate", type=Path, required=True, help="the second surrogate (.pt)")
    parser.add_argument("--clean", type=Path, required=True, help="the original works")
    parser.add_argument("cloaked", nargs="+", type=Path, help="folders of their cloaks (NAME.cloaked.png)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    device = torch.device("cpu")
    encoder = load_encoder("taef2", device)
    term = surrogate_term(load_surrogate_file(args.surrogate, device))
    purify = get_countermeasure("noise8+upscale")
    clean, names = load_art_folder(args.clean)
    clean_purified = [purify.apply(x, encoder) for x in clean]
    reference = mean_loss(term, encoder, clean)
    print(
        f"clean: loss {reference:.4f} (1.00); after {purify.name} {mean_loss(term, encoder, clean_purified) / reference:.2f}"
    )
    print("| cloaks | relative loss | after noise8+upscale | pixel change kept | latent change kept |")
    print("|---|---|---|---|---|")
    for folder in args.cloaked:
        cloaks, cloak_names = load_art_folder(folder)
        if [artwork_key(Path(n)) for n in cloak_names] != [artwork_key(Path(n)) for n in names]:
            raise SystemExit(f"{folder}: not the cloaks of exactly the works in {args.clean}")
        purified = [purify.apply(x, encoder) for x in cloaks]
        pixels, latents = [], []
        for original, cloak, original_p, cloak_p in zip(clean, cloaks, clean_purified, purified):
            small = [resize_for_mimic(x, MIMIC_SIZE) for x in (original, cloak, original_p, cloak_p)]
            pixels.append(float((small[3] - small[2]).norm() / (small[1] - small[0]).norm()))
            z = [encoder.encode(x) for x in small]
            posted, after = z[1] - z[0], z[3] - z[2]
            latents.append(float((after * posted).sum() / posted.pow(2).sum()))
        print(
            f"| {folder} | {mean_loss(term, encoder, cloaks) / reference:.2f} | "
            f"{mean_loss(term, encoder, purified) / reference:.2f} | {statistics.median(pixels):.2f} | "
            f"{statistics.median(latents):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
