"""Train the surrogate latent diffusion model of the experimental denoiser-aware cloak term
(:mod:`stylecloak.models.surrogate`) on other art: the labelled works of --others that are not the artist's
(the works of --clean are left out by name), as one class ``art``, and those works rendered in every catalogue
target style (seed 1, not the judges' 0), one class per style. Saves the model to --out, to be given to
``bench_designs.py --surrogate``.

It trains on the other styles of the evaluator's own mimic run, so it has seen that mimic's other classes (not
the artist's works, not the evaluator's model): a real deployment would train it on a corpus of its own. The
quick mimic's architecture and steps, seed 1 (the evaluator's mimic has 0), unless --channels, --no-attention
or --seed say otherwise.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_surrogate.py \\
        --clean /tmp/curve-dec/clean --others ../shared/data/paintings --out /tmp/surrogate.pt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from stylecloak.evaluation.attack import rendition_classes
from stylecloak.evaluation.mimic import MimicConfig
from stylecloak.evaluation.mimicry_run import artwork_key, load_art_folder, load_other_styles
from stylecloak.models.encoders import load_encoder
from stylecloak.models.surrogate import (
    SURROGATE_SEED,
    save_surrogate,
    synthetic_surrogate_classes,
    train_artist_surrogate,
    train_surrogate,
)
from stylecloak.targets import available_targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", type=Path, help="the artist's works (left out)")
    parser.add_argument("--others", type=Path, help="labelled art (manifest.csv with a style column)")
    parser.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        help="train on N procedural images (stylecloak.models.synthetic_art, seed --seed) and their renditions "
        "instead of any art: a corpus no mimic has seen in any form (--clean and --others are then not used)",
    )
    parser.add_argument(
        "--artist",
        type=Path,
        metavar="DIR",
        help="then fine-tune on the artist's own (clean) works in DIR as class `artist`, as the mimic fine-tunes its "
        "base model (the artist holds the works, so the cloak side may): for bench_designs.py --denoiser-from artist",
    )
    parser.add_argument(
        "--fine-tune-steps",
        type=int,
        default=MimicConfig.steps,
        help=f"steps of the fine-tuning on --artist (default {MimicConfig.steps}, the mimic's): more steps, a "
        "class further from the unconditioned prediction",
    )
    parser.add_argument(
        "--artist-share",
        type=float,
        default=MimicConfig.artist_share,
        help=f"share of each fine-tuning batch from --artist (default {MimicConfig.artist_share}, the mimic's)",
    )
    parser.add_argument("--out", type=Path, required=True, help="where to save the surrogate (.pt)")
    parser.add_argument(
        "--channels",
        default="32,64,128",
        help="the UNet's channels per level (default: the quick mimic's); another architecture shows whether "
        "the term transfers to a mimic that is not built like the surrogate",
    )
    parser.add_argument("--no-attention", action="store_true", help="no attention block at any level")
    parser.add_argument("--seed", type=int, default=SURROGATE_SEED)
    parser.add_argument(
        "--renditions-only",
        action="store_true",
        help="train on the renditions alone, without the works themselves: a surrogate that never saw the "
        "mimic's other styles as they are",
    )
    args = parser.parse_args()
    channels = tuple(int(c) for c in args.channels.split(","))
    attention = tuple(not args.no_attention and level == len(channels) - 1 for level in range(len(channels)))
    if not args.artist and (args.fine_tune_steps != MimicConfig.steps or args.artist_share != MimicConfig.artist_share):
        parser.error("--fine-tune-steps and --artist-share shape the fine-tuning on --artist; give --artist")
    try:  # MimicConfig checks the share and the steps; one line here, before any training
        config = MimicConfig(
            seed=args.seed,
            channels=channels,
            attention_levels=attention,
            steps=args.fine_tune_steps,
            artist_share=args.artist_share,
        )
    except ValueError as error:
        parser.error(str(error))
    started, device = time.perf_counter(), torch.device("cpu")
    if args.synthetic and args.renditions_only:
        parser.error("--renditions-only is for art (--clean, --others); --synthetic always trains on both")
    if args.synthetic:
        classes = synthetic_surrogate_classes(args.synthetic, seed=args.seed)
    elif args.clean and args.others:
        _, names = load_art_folder(args.clean)
        others = load_other_styles(args.others, frozenset(artwork_key(Path(n)) for n in names))
        works = [image for images in others.values() for image in images]
        classes = {} if args.renditions_only else {"art": works}
        classes |= rendition_classes(others, available_targets(), seed=1)
    else:
        parser.error("give --clean and --others, or --synthetic N")
    print(f"classes: {', '.join(f'{label} ({len(images)})' for label, images in classes.items())}", flush=True)
    encoder = load_encoder("taef2", device)

    def report(phase: str, done: int, total: int) -> None:
        if done % 500 == 0 or done == total:
            print(f"{phase} {done}/{total} ({time.perf_counter() - started:.0f} s)", flush=True)

    if args.artist:
        artist, _ = load_art_folder(args.artist)
        print(f"then fine-tuned on the artist's {len(artist)} works as class `artist`", flush=True)
        model = train_artist_surrogate(classes, artist, encoder, device, config, progress=report)
    else:
        model = train_surrogate(classes, encoder, device, config, progress=report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_surrogate(model, args.out)
    tail = model.losses[-100:]
    print(f"saved {args.out}; last 100 steps' loss {sum(tail) / len(tail):.3f} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
