"""How distinct is a surrogate's class from its unconditioned prediction, and does guiding from it change the
toward-target term's direction? For a surrogate of ``bench_surrogate.py --artist`` and the artist's works:

1. the denoising loss (v target) on training-size crops (``crop`` px at the mimic's ``image_size``) of the works,
   for every class condition, relative to the unconditioned prediction, at noise levels 500-980 (64 crops a work);
2. per work, the cosine between the term's gradients guided from --negative and from the unconditioned
   prediction (same noise draws, 16 of them), at guidance 7.5 and 15.

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_artist_class.py \\
        --surrogate /tmp/s28/syn-artist-ft.pt --works /tmp/s24/ren512/clean --target pop-art
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from stylecloak.evaluation.attack import rendition_label
from stylecloak.evaluation.mimic import _scheduler_config, encode_images, resize_for_mimic
from stylecloak.evaluation.mimicry_run import load_art_folder
from stylecloak.models.encoders import load_encoder
from stylecloak.models.surrogate import ARTIST_CLASS, DenoiserTerm, load_surrogate

LEVELS = (500, 980)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surrogate", type=Path, required=True)
    parser.add_argument("--works", type=Path, required=True, help="the artist's works, as the surrogate learned them")
    parser.add_argument("--target", default="pop-art", help="the catalogue target the term pulls toward")
    parser.add_argument("--negative", default=ARTIST_CLASS, help="the class the term is guided from")
    args = parser.parse_args()
    from diffusers import DDPMScheduler

    torch.set_num_threads(1)
    device = torch.device("cpu")
    model = load_surrogate(args.surrogate, device)
    encoder = load_encoder("taef2", device)
    works, _ = load_art_folder(args.works)
    size = model.config.image_size
    latents = [
        z if z.dim() == 4 else z[None]
        for z in encode_images(encoder, [resize_for_mimic(x, size) for x in works], device)
    ]

    scheduler, generator = DDPMScheduler(**_scheduler_config()), torch.Generator().manual_seed(0)
    conditions = {"unconditioned": len(model.labels)} | {label: i for i, label in enumerate(model.labels)}
    totals, crop = dict.fromkeys(conditions, 0.0), model.config.crop // 8
    with torch.no_grad():
        for z in latents:
            z = (z - model.mean) / model.std
            height, width = z.shape[-2:]
            for _ in range(64):
                y = int(torch.randint(0, height - crop + 1, (1,), generator=generator))
                x = int(torch.randint(0, width - crop + 1, (1,), generator=generator))
                clean = z[..., y : y + crop, x : x + crop]
                t = torch.tensor([int(torch.randint(*LEVELS, (1,), generator=generator))])
                noise = torch.randn(clean.shape, generator=generator)
                noisy, velocity = scheduler.add_noise(clean, noise, t), scheduler.get_velocity(clean, noise, t)
                labels = torch.tensor(list(conditions.values()))
                out = model.unet(noisy.repeat(len(conditions), 1, 1, 1), t.repeat(len(conditions)), class_labels=labels)
                for name, predicted in zip(conditions, out.sample):
                    totals[name] += float((predicted - velocity[0]).pow(2).mean())
    base = totals["unconditioned"]
    print("denoising loss on the works' crops, relative to the unconditioned prediction:")
    print("  " + " ".join(f"{name} {totals[name] / base:.4f}" for name in sorted(totals, key=totals.get)))

    label = rendition_label(args.target)
    for guidance in (7.5, 15.0):
        cosines = []
        for z in latents:
            gradients = []
            for negative in (None, args.negative):
                term = DenoiserTerm(
                    model,
                    "toward-target",
                    label,
                    guidance=guidance,
                    timestep_range=LEVELS,
                    seed=5,
                    negative_label=negative,
                )
                total = torch.zeros_like(z)
                for _ in range(16):
                    view = z.clone().requires_grad_(True)
                    term.loss(view, ("work",)).backward()
                    total += view.grad
                gradients.append(total.flatten())
            cosines.append(float(torch.nn.functional.cosine_similarity(*gradients, dim=0)))
        print(
            f"guidance {guidance:g}: cosine from {args.negative!r} vs unconditioned, per work: "
            + " ".join(f"{c:.3f}" for c in cosines)
        )


if __name__ == "__main__":
    main()
