"""bench_designs.py with another network's style statistics in the ``decoded-gram`` objective: an experiment.

The ``decoded-gram`` view objective compares the Gram statistics of the first ``view_gram_layers`` layers of the
LPIPS network (AlexNet) of the decoder's image of each shrunk view. Which statistics move the ones the Gram judge
reads (VGG16), and so what a style-transfer attack copies? This runs bench_designs.py unchanged except for the
statistics that objective compares (``stylecloak.optimize.perceptual_grams``, swapped for this process only):

- ``random-bank``: one layer of fixed random filters of five sizes (3 to 15 px, 64 each, zero-mean, seed 0),
  rectified, as in Ustyuzhaninov et al. (2017): style statistics of no trained network at all;
- ``judge-vgg16``: the judge's own network (VGG16, its four Gram layers). **A diagnostic only**: a ceiling of
  what the objective can move in the judge's statistics within the bounds. A cloak made this way is never a
  design (it would be tuned to the evaluator), and nothing in the library can build it.

The first layers of AlexNet need no swap: ``--set view_gram_layers=N``. Every other argument is
bench_designs.py's; ``bench_decoded_view.py`` measures the result (its ``judge`` column).

    STYLECLOAK_MODELS=../shared/models .venv/bin/python benchmarks/bench_gram_statistics.py random-bank \\
        --name p-rand --target pop-art --set mimic_downscales=2,4 --set full_size_weight=0 \\
        --set view_objective=decoded-gram --out /tmp/p-rand /tmp/prints/clean/*.png
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import stylecloak.optimize
from stylecloak.descriptors import GRAM_LAYERS, gram_matrix
from stylecloak.models.lpips import load_vgg16_features
from stylecloak.models.vgg import imagenet_normalize

Statistics = Callable[[torch.nn.Module, torch.Tensor, "int | None"], torch.Tensor]


def _unit_gram(features: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of features unit-normalised at each position, as ``perceptual_grams`` takes them. Not
    ``models.lpips.normalize_tensor``: its epsilon sits outside the root, and the sets in docs/protection.md were
    made with this one (the same files byte for byte on a rerun)."""
    features = features / (features.pow(2).sum(1, keepdim=True) + 1e-10).sqrt()
    return gram_matrix(features).flatten()


def random_bank() -> Statistics:
    generator = torch.Generator().manual_seed(0)
    bank = []
    for size in (3, 5, 7, 11, 15):
        weights = torch.randn(64, 3, size, size, generator=generator)
        weights = weights - weights.mean(dim=(1, 2, 3), keepdim=True)
        bank.append(weights / weights.flatten(1).norm(dim=1).view(-1, 1, 1, 1))

    def statistics(perceptual: torch.nn.Module, image: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        x = image * 2 - 1
        return torch.cat([_unit_gram(F.relu(F.conv2d(x, w.to(x), padding=w.shape[-1] // 2))) for w in bank])

    return statistics


def judge_vgg16() -> Statistics:
    vgg = load_vgg16_features(torch.device("cpu"))
    for parameter in vgg.parameters():
        parameter.requires_grad_(False)

    def statistics(perceptual: torch.nn.Module, image: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        activations = vgg(imagenet_normalize(image), GRAM_LAYERS)
        return torch.cat([_unit_gram(activations[name]) for name in GRAM_LAYERS])

    return statistics


CHOICES = {"random-bank": random_bank, "judge-vgg16": judge_vgg16}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in CHOICES:
        raise SystemExit(f"usage: bench_gram_statistics.py {{{','.join(CHOICES)}}} BENCH_DESIGNS_ARGUMENTS...")
    stylecloak.optimize.perceptual_grams = CHOICES[sys.argv[1]]()  # type: ignore[assignment]
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    sys.argv = [str(here / "bench_designs.py"), *sys.argv[2:]]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
