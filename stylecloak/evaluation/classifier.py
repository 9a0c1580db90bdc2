"""What a style classifier is (:class:`StyleClassifier`), and the one that works offline (:class:`FeatureStyleClassifier`).

The protection success rate (docs/metrics.md) asks a style classifier whether a mimic's output is in the
artist's style; the mimicry attacks call it their judge. The embedded classifier is a feature extractor, VGG16
Gram-matrix features (:mod:`.style_features`) or colour-blind texture statistics (:mod:`.texture_features`, the
second, independent judge), with a small head (:mod:`.style_heads`): nearest class centroid or L2-regularised
multinomial logistic regression. A few labelled images per style are enough to train it; its accuracy is
measured by cross-validation (:mod:`.cross_validation`).

Images everywhere are 1x3xHxW float tensors in [0, 1]. ``predict_proba`` returns N x K probabilities whose
columns follow ``labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from .style_heads import HEADS, FeatureHead


class FeatureExtractor(Protocol):
    """One vector per image, and augmented views of a training image; ``block_sizes`` splits the vector into
    the families a head weighs equally (see :class:`~stylecloak.evaluation.style_features.GramFeatureExtractor`)."""

    block_sizes: tuple[int, ...]

    def features(self, image: torch.Tensor) -> torch.Tensor: ...

    def training_features(self, image: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class StyleClassifier(Protocol):
    """Trained on labelled images; ``predict_proba`` columns follow ``labels`` (known after ``fit``).

    The mimicry attacks use it as their judge (``fit``, then ``predict``); the protection success rate and
    cross-validation also read ``labels`` and ``predict_proba``."""

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


def check_training_set(images: Sequence[torch.Tensor], labels: Sequence[str]) -> None:
    """One-line ``ValueError`` unless there are images, one label each, and every image passes :func:`check_images`."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if not images:
        raise ValueError("no training images")
    check_images(images)


class FeatureStyleClassifier:
    """A :class:`FeatureExtractor` + a head: the offline :class:`StyleClassifier`."""

    def __init__(self, extractor: FeatureExtractor, head: FeatureHead | str = "centroid") -> None:
        if isinstance(head, str):
            if head not in HEADS:
                raise ValueError(f"unknown head {head!r}; choose from {', '.join(HEADS)}")
            head = HEADS[head]()
        self.extractor, self.head = extractor, head
        self.labels: list[str] = []

    def fit(self, images: Sequence[torch.Tensor], labels: Sequence[str]) -> FeatureStyleClassifier:
        check_training_set(images, labels)
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
