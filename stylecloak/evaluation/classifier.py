"""Style classifiers that work offline, and their cross-validated accuracy.

The protection success rate (docs/metrics.md) asks a style classifier whether a mimic's output is in the
artist's style. The embedded classifier is VGG16 Gram-matrix features (the style signature of Gatys et al., from
the LPIPS package's VGG16 weights) with a small head: nearest class centroid or L2-regularised multinomial
logistic regression. A few labelled images per style are enough to train it, and the accuracy is measured by
cross-validation (leave-one-out suits a portfolio of twenty images).

A mimic's outputs are small (64-128 px) and soft, while training paintings are sharp. Two things keep the
classifier usable on such images:

- every image is described at the same small working size (``long_side``, 128 px), after passing through a
  ``detail_side`` bottleneck (shrunk to 96 px and back): a sharp painting and a blurry 128 px image then carry
  the same level of detail, so the features measure style, not sharpness;
- training adds random views of each image (crops at the same pixel scale, and copies shrunk and blurred
  further), so that 21 paintings give a few hundred samples and the heads see the variation they will meet.

Images everywhere are 1x3xHxW float tensors in [0, 1]. ``predict_proba`` returns N x K probabilities whose
columns follow ``labels``.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from ..countermeasures import gaussian_filter
from ..descriptors import GRAM_LAYERS, gram_matrix, resize_long_side
from ..models.vgg import VGG16Features, imagenet_normalize

WORKING_LONG_SIDE = 128
DETAIL_LONG_SIDE = 96
TRAINING_VIEWS = 6
_STD_FLOOR = 1e-2  # of the mean standard deviation: features that never vary must not blow up when standardised


@runtime_checkable
class StyleClassifier(Protocol):
    """Trained on labelled images; ``predict_proba`` columns follow ``labels`` (known after ``fit``)."""

    labels: list[str]

    def fit(self, images: Sequence[torch.Tensor], labels: Sequence[str]) -> StyleClassifier: ...

    def predict_proba(self, images: Sequence[torch.Tensor]) -> torch.Tensor: ...

    def predict(self, images: Sequence[torch.Tensor]) -> list[str]: ...


def check_images(images: Sequence[torch.Tensor]) -> None:
    """One-line ``ValueError`` unless every item is a 1x3xHxW float tensor."""
    for index, image in enumerate(images):
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[:2] != (1, 3):
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"image {index}: expected a 1x3xHxW tensor in [0, 1], got {shape}")
        if not image.is_floating_point():
            raise ValueError(f"image {index}: expected a float tensor in [0, 1], got {image.dtype}")
        if min(image.shape[-2:]) < 2:
            raise ValueError(f"image {index}: too small ({image.shape[-1]}x{image.shape[-2]} px)")


def _check_training_set(images: Sequence[torch.Tensor], labels: Sequence[str]) -> None:
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if not images:
        raise ValueError("no training images")
    check_images(images)


def degrade(image: torch.Tensor, long_side: int, sigma: float = 0.0) -> torch.Tensor:
    """Shrink (never enlarge) to ``long_side`` and blur by ``sigma`` px: roughly how a small mimic's output looks."""
    if max(image.shape[-2:]) > long_side:
        image = resize_long_side(image, long_side)
    return (gaussian_filter(image, sigma) if sigma > 0 else image).clamp(0, 1)


def _content_key(image: torch.Tensor) -> str:
    data = image.detach().to("cpu", torch.float32).contiguous()
    digest = hashlib.sha1(data.numpy().tobytes())
    digest.update(str(tuple(data.shape)).encode())
    return digest.hexdigest()


@dataclass
class GramFeatureExtractor:
    """One feature vector per image: the signed square root of each layer's VGG16 Gram matrix (upper
    triangle, scaled by 1/C as in :class:`~stylecloak.descriptors.GramDescriptor`), concatenated by layer.

    ``block_sizes`` gives each layer's share of the vector, so that heads can weigh layers equally (otherwise
    relu4_3's 131k entries would drown relu1_2's 2k). Features are cached by image content: cross-validation
    refits the head many times on the same images, and VGG is the slow part.
    """

    vgg: VGG16Features
    layers: tuple[str, ...] = GRAM_LAYERS
    long_side: int = WORKING_LONG_SIDE
    detail_side: int | None = DETAIL_LONG_SIDE
    views: int = TRAINING_VIEWS
    seed: int = 0
    cache: bool = True
    _plain: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)
    _views: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.long_side < 16:
            raise ValueError(f"long_side must be at least 16 px, got {self.long_side}")
        if self.detail_side is not None and not 8 <= self.detail_side <= self.long_side:
            raise ValueError(f"detail_side must lie between 8 and long_side ({self.long_side}), got {self.detail_side}")
        if self.views < 0:
            raise ValueError(f"views must be 0 or more, got {self.views}")
        channels = {"relu1_2": 64, "relu2_2": 128, "relu3_3": 256, "relu4_3": 512}
        unknown = [layer for layer in self.layers if layer not in channels]
        if unknown or not self.layers:
            raise ValueError(f"layers must be among {', '.join(channels)}, got {', '.join(self.layers) or 'none'}")
        self.block_sizes = tuple(channels[layer] * (channels[layer] + 1) // 2 for layer in self.layers)
        self._device = next(self.vgg.parameters()).device

    def _normalise(self, image: torch.Tensor) -> torch.Tensor:
        """The working size, through the detail bottleneck (see the module's notes)."""
        image = image.to(self._device, torch.float32).clamp(0, 1)
        if self.detail_side is not None:
            image = resize_long_side(image, min(self.detail_side, max(image.shape[-2:])))
        return resize_long_side(image, self.long_side)

    @torch.no_grad()
    def _describe(self, working: torch.Tensor) -> torch.Tensor:
        activations = self.vgg(imagenet_normalize(working), self.layers)
        parts = []
        for layer in self.layers:
            gram = gram_matrix(activations[layer])[0]
            rows, cols = torch.triu_indices(gram.shape[0], gram.shape[0], device=gram.device)
            upper = gram[rows, cols]
            parts.append(upper.sign() * upper.abs().sqrt() / gram.shape[0])
        return torch.cat(parts).cpu()

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """The D-vector of one 1x3xHxW image, as used at prediction time."""
        key = _content_key(image) if self.cache else ""
        if key in self._plain:
            return self._plain[key]
        vector = self._describe(self._normalise(image))
        if self.cache:
            self._plain[key] = vector
        return vector

    def training_features(self, image: torch.Tensor) -> torch.Tensor:
        """(1 + views) x D: the plain image, then random views of it (deterministic for a seed and image)."""
        key = _content_key(image)
        if self.cache and key in self._views:
            return self._views[key]
        rng = random.Random(f"{self.seed}:{key}")
        working = self._normalise(image)
        rows = [self.features(image)]
        for index in range(self.views):
            rows.append(self._describe(self._view(working, rng, index)))
        stacked = torch.stack(rows)
        if self.cache:
            self._views[key] = stacked
        return stacked

    def _view(self, working: torch.Tensor, rng: random.Random, index: int) -> torch.Tensor:
        """Even views: a crop of 60-90% of each side at the same pixel scale (texture scale is part of style).
        Odd views: the whole image shrunk to 50-90% and blurred a little, then back to working size (a
        softer, smaller rendering, as a mimic produces)."""
        height, width = working.shape[-2:]
        if index % 2 == 0:
            fraction = rng.uniform(0.6, 0.9)
            crop_h, crop_w = max(16, round(height * fraction)), max(16, round(width * fraction))
            crop_h, crop_w = min(crop_h, height), min(crop_w, width)
            top, left = rng.randint(0, height - crop_h), rng.randint(0, width - crop_w)
            return working[..., top : top + crop_h, left : left + crop_w]
        side = max(16, round(max(height, width) * rng.uniform(0.5, 0.9)))
        soft = degrade(working, side, rng.uniform(0.0, 1.0))
        return resize_long_side(soft, max(height, width))

    def clear_cache(self) -> None:
        self._plain.clear()
        self._views.clear()


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
        self.train = self.standardise(samples).double()
        kernel = self.train @ self.train.T
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

    def predict_proba(self, samples: torch.Tensor) -> torch.Tensor:
        logits = self.standardise(samples).double() @ self.train.T @ self.coef + self.bias
        return torch.softmax(logits, dim=1).float()


HEADS: dict[str, Callable[[], FeatureHead]] = {"centroid": CentroidHead, "linear": LinearHead}


class GramStyleClassifier:
    """:class:`GramFeatureExtractor` + a head: the offline :class:`StyleClassifier`."""

    def __init__(self, extractor: GramFeatureExtractor, head: FeatureHead | str = "centroid") -> None:
        if isinstance(head, str):
            if head not in HEADS:
                raise ValueError(f"unknown head {head!r}; choose from {', '.join(HEADS)}")
            head = HEADS[head]()
        self.extractor, self.head = extractor, head
        self.labels: list[str] = []

    def fit(self, images: Sequence[torch.Tensor], labels: Sequence[str]) -> GramStyleClassifier:
        _check_training_set(images, labels)
        self.labels = sorted(set(labels))
        blocks, targets = [], []
        for image, label in zip(images, labels):
            views = self.extractor.training_features(image)
            blocks.append(views)
            targets += [self.labels.index(label)] * len(views)
        self.head.fit(torch.cat(blocks), torch.tensor(targets), len(self.labels), self.extractor.block_sizes)
        return self

    def predict_proba(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        if not self.labels:
            raise ValueError("the classifier is not trained yet (call fit first)")
        check_images(images)
        if not images:
            return torch.zeros(0, len(self.labels))
        return self.head.predict_proba(torch.stack([self.extractor.features(image) for image in images]))

    def predict(self, images: Sequence[torch.Tensor]) -> list[str]:
        return [self.labels[k] for k in self.predict_proba(images).argmax(dim=1).tolist()]


def label_probability(classifier: StyleClassifier, images: Sequence[torch.Tensor], label: str) -> torch.Tensor:
    """P(label) for each image (the binary view "is it the artist's style?"); zeros for a label never trained."""
    proba = classifier.predict_proba(images)
    if label not in classifier.labels:
        return torch.zeros(proba.shape[0])
    return proba[:, classifier.labels.index(label)]


def attributed_share(
    classifier: StyleClassifier, images: Sequence[torch.Tensor], label: str, threshold: float | None = None
) -> float:
    """The share of ``images`` attributed to ``label``: its most probable label, or P(label) >= ``threshold``.
    The protection success rate of a cloak is 1 minus this share on the mimic's outputs."""
    if not images:
        raise ValueError("no images to classify")
    if threshold is None:
        chosen = classifier.predict(images)
        return sum(name == label for name in chosen) / len(images)
    return float((label_probability(classifier, images, label) >= threshold).float().mean())


# ---------------------------------------------------------------------------------------------- cross-validation


@dataclass
class BinaryScore:
    """One label against the rest: accuracy, recall of the label (true positive rate), false positive rate."""

    label: str
    accuracy: float
    true_positive_rate: float
    false_positive_rate: float


@dataclass
class CVResult:
    labels: list[str]
    accuracy: float
    per_class: dict[str, float]  # recall: the share of each label's images predicted as that label
    confusion: list[list[int]]  # confusion[true][predicted], rows and columns in ``labels`` order
    n: int
    folds: int
    predictions: list[str]  # the held-out prediction for each image, in input order
    chance: float  # accuracy of always answering the most common label

    def binary(self, label: str) -> BinaryScore:
        """The label-vs-rest view of the same predictions (e.g. "ukiyo-e or not")."""
        if label not in self.labels:
            raise ValueError(f"unknown label {label!r}; the labels are {', '.join(self.labels)}")
        k = self.labels.index(label)
        total = sum(map(sum, self.confusion))
        tp = self.confusion[k][k]
        positives = sum(self.confusion[k])
        predicted = sum(row[k] for row in self.confusion)
        fp = predicted - tp
        negatives = total - positives
        tn = negatives - fp
        return BinaryScore(
            label,
            (tp + tn) / total,
            tp / positives if positives else float("nan"),
            fp / negatives if negatives else float("nan"),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "labels": self.labels,
            "accuracy": self.accuracy,
            "per_class": self.per_class,
            "confusion": self.confusion,
            "n": self.n,
            "folds": self.folds,
            "chance": self.chance,
        }


def stratified_folds(labels: Sequence[str], folds: int | Literal["loo"], seed: int = 0) -> list[list[int]]:
    """Index lists of the held-out images, one per fold. Stratified: each label's images (in a seeded random
    order) are dealt round-robin to the folds, continuing where the previous label stopped, so fold sizes
    differ by at most one. ``"loo"`` is leave-one-out."""
    n = len(labels)
    if folds == "loo":
        return [[i] for i in range(n)]
    if not isinstance(folds, int) or isinstance(folds, bool) or not 2 <= folds <= n:
        raise ValueError(f"folds must be 'loo' or a whole number from 2 to the number of images ({n}), got {folds!r}")
    rng = random.Random(seed)
    out: list[list[int]] = [[] for _ in range(folds)]
    position = 0
    for label in sorted(set(labels)):
        members = [i for i, name in enumerate(labels) if name == label]
        rng.shuffle(members)
        for index in members:
            out[position % folds].append(index)
            position += 1
    return [sorted(fold) for fold in out]


def cross_validate(
    make_classifier: Callable[[], StyleClassifier],
    images: Sequence[torch.Tensor],
    labels: Sequence[str],
    folds: int | Literal["loo"] = "loo",
    seed: int = 0,
    test_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> CVResult:
    """Train on all folds but one, predict the held-out one, for every fold. ``test_transform`` changes the
    held-out images only (e.g. :func:`degrade`, to score the classifier on images like a mimic's outputs).
    A label whose every image is held out cannot be predicted in that fold; that counts as an error."""
    _check_training_set(images, labels)
    if len(set(labels)) < 2:
        raise ValueError("cross-validation needs at least two labels")
    splits = stratified_folds(labels, folds, seed)
    predictions: list[str] = [""] * len(images)
    for held_out in splits:
        if not held_out:
            continue
        keep = set(held_out)
        train = [i for i in range(len(images)) if i not in keep]
        classifier = make_classifier().fit([images[i] for i in train], [labels[i] for i in train])
        tests = [images[i] if test_transform is None else test_transform(images[i]) for i in held_out]
        for index, predicted in zip(held_out, classifier.predict(tests)):
            predictions[index] = predicted
    names = sorted(set(labels))
    confusion = [[0] * len(names) for _ in names]
    for truth, predicted in zip(labels, predictions):
        confusion[names.index(truth)][names.index(predicted)] += 1
    per_class = {name: confusion[k][k] / sum(confusion[k]) for k, name in enumerate(names)}
    correct = sum(confusion[k][k] for k in range(len(names)))
    chance = max(sum(row) for row in confusion) / len(labels)
    return CVResult(names, correct / len(labels), per_class, confusion, len(labels), len(splits), predictions, chance)
