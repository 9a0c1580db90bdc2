"""The cross-validated accuracy of a style classifier: train on all folds but one, predict the held-out one.

Leave-one-out suits a portfolio of twenty images; k folds are stratified, each label spread evenly over them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from .classifier import StyleClassifier, check_training_set


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
    held-out images only (e.g. :func:`~stylecloak.evaluation.style_features.degrade`, to score the classifier on
    images like a mimic's outputs).
    A label whose every image is held out cannot be predicted in that fold; that counts as an error."""
    check_training_set(images, labels)
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
