"""Classifier heads on style feature vectors: nearest class centroid, or L2-regularised multinomial logistic
regression. Both standardise the features first and weigh each feature block (a VGG layer) the same."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

_STD_FLOOR = 1e-2  # of the mean standard deviation: features that never vary must not blow up when standardised


class _Standardiser:
    """Zero mean and unit variance per feature (floored), then each block scaled by 1/sqrt(its size), so
    that every layer weighs the same in distances and in the L2 penalty."""

    def __init__(self, samples: torch.Tensor, block_sizes: Sequence[int] | None) -> None:
        self.mean = samples.mean(dim=0)
        std = samples.std(dim=0, unbiased=False) if samples.shape[0] > 1 else torch.ones_like(self.mean)
        self.scale = std + _STD_FLOOR * std.mean() + 1e-12
        sizes = list(block_sizes) if block_sizes else [samples.shape[1]]
        if sum(sizes) != samples.shape[1]:
            raise ValueError(f"block sizes add up to {sum(sizes)}, features have {samples.shape[1]} entries")
        self.weight = torch.cat([torch.full((size,), 1 / math.sqrt(size)) for size in sizes])

    def __call__(self, samples: torch.Tensor) -> torch.Tensor:
        return (samples - self.mean) / self.scale * self.weight

    def slices(self, samples: torch.Tensor, width: int = 16384) -> Iterator[torch.Tensor]:
        """``self(samples)`` in double, ``width`` features at a time, in order: for heads that need the
        standardised training set only as sums over features, without a standardised copy of all of it."""
        for start in range(0, samples.shape[1], width):
            part = slice(start, start + width)
            yield ((samples[:, part] - self.mean[part]) / self.scale[part] * self.weight[part]).double()


class FeatureHead(Protocol):
    """A classifier on feature vectors: ``fit(X, y)`` with integer classes 0..K-1, ``predict_proba(X)`` N x K."""

    def fit(
        self, samples: torch.Tensor, targets: torch.Tensor, n_classes: int, block_sizes: Sequence[int] | None
    ) -> None: ...

    def predict_proba(self, samples: torch.Tensor) -> torch.Tensor: ...


class CentroidHead:
    """Nearest class centroid in standardised feature space; probabilities are a softmax over negative
    distances, with the temperature set to the mean distance of training samples to their own centroid (so
    a sample one typical spread closer to a class gets e times its odds)."""

    def __init__(self, metric: Literal["euclidean", "cosine"] = "euclidean") -> None:
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be euclidean or cosine, got {metric!r}")
        self.metric = metric

    def _distances(self, standardised: torch.Tensor) -> torch.Tensor:
        if self.metric == "cosine":
            return 1 - F.normalize(standardised, dim=1) @ F.normalize(self.centroids, dim=1).T
        return torch.cdist(standardised, self.centroids)

    def fit(
        self, samples: torch.Tensor, targets: torch.Tensor, n_classes: int, block_sizes: Sequence[int] | None
    ) -> None:
        self.standardise = _Standardiser(samples, block_sizes)
        data = self.standardise(samples)
        self.centroids = torch.stack([data[targets == k].mean(dim=0) for k in range(n_classes)])
        own = self._distances(data).gather(1, targets.view(-1, 1))
        self.temperature = float(own.mean()) if float(own.mean()) > 0 else 1.0

    def predict_proba(self, samples: torch.Tensor) -> torch.Tensor:
        return torch.softmax(-self._distances(self.standardise(samples)) / self.temperature, dim=1)


class LinearHead:
    """Multinomial logistic regression, ``mean cross-entropy + l2 * ||W||^2`` on standardised features.

    With far more features (~175k) than samples (~150) the optimal W lies in the span of the training
    samples, so it is solved exactly in that span (W = X^T A, an n x K problem, the "dual" form) with L-BFGS:
    same answer as the primal problem, in milliseconds instead of minutes. Deterministic (full batch)."""

    def __init__(self, l2: float = 0.01, max_iter: int = 200) -> None:
        if l2 <= 0:
            raise ValueError(f"l2 must be positive, got {l2}")
        self.l2, self.max_iter = l2, max_iter

    def fit(
        self, samples: torch.Tensor, targets: torch.Tensor, n_classes: int, block_sizes: Sequence[int] | None
    ) -> None:
        self.standardise = _Standardiser(samples, block_sizes)
        # Standardised and taken to double a slice of features at a time: a standardised double copy of the
        # whole N x D matrix was the largest thing in memory (about 12 GB for a judge with rendition classes,
        # some 5000 views x 306k Gram features), and the dual problem needs only the N x N kernel.
        kernel = torch.zeros(len(samples), len(samples), dtype=torch.float64)
        for block in self.standardise.slices(samples):
            kernel += block @ block.T
        coef = torch.zeros(len(samples), n_classes, dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.LBFGS([coef, bias], max_iter=self.max_iter, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = F.cross_entropy(kernel @ coef + bias, targets) + self.l2 * (coef * (kernel @ coef)).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimiser.step(closure)
        self.coef, self.bias = coef.detach(), bias.detach()
        # The primal weights W = X^T A (D x K): prediction needs only them, not the training matrix.
        self.weights = torch.cat([block.T @ self.coef for block in self.standardise.slices(samples)])

    def predict_proba(self, samples: torch.Tensor) -> torch.Tensor:
        logits = self.standardise(samples).double() @ self.weights + self.bias
        return torch.softmax(logits, dim=1).float()


HEADS: dict[str, Callable[[], FeatureHead]] = {"centroid": CentroidHead, "linear": LinearHead}
