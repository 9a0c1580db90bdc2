"""How good is the judge? The offline style classifier cross-validated on a labelled folder, as
``stylecloak style-classifier`` runs it: know its accuracy before trusting its verdicts on a mimic's images."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import first_line
from .labelled import LabelledFolderError, load_labelled_images, read_labelled_folder


class ClassifierCheckError(ValueError):
    """The check cannot run; ``usage`` tells an option given wrongly from a folder that cannot serve."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class ClassifierCheck:
    """One cross-validation; the defaults are the command line's (``stylecloak.options.STYLE_CLASSIFIER``)."""

    folder: Path
    head: str = "centroid"  # centroid | linear
    folds: int | str = "loo"  # a number of stratified folds, or "loo"
    long_side: int = 128
    detail: int | None = None  # None: 3/4 of long_side; 0: no detail bottleneck
    views: int = 6
    column: str = "style"
    shrink: int | None = None  # score the held-out images after shrinking them to this long side
    blur: float = 0.0  # ... and blurring them by this sigma (px)
    positive: str | None = None  # also report this label against the rest
    seed: int = 0

    def detail_side(self) -> int | None:
        from .style_features import DETAIL_LONG_SIDE, WORKING_LONG_SIDE

        if self.detail is None:  # the default bottleneck keeps its proportion to the working size
            return max(8, round(self.long_side * DETAIL_LONG_SIDE / WORKING_LONG_SIDE))
        return self.detail or None


def check_classifier(check: ClassifierCheck) -> dict[str, Any]:
    """Cross-validate; returns the result as plain data (what ``--json`` prints). Raises ClassifierCheckError."""
    from ..models.lpips import load_vgg16_features
    from .classifier import FeatureStyleClassifier
    from .cross_validation import cross_validate
    from .style_features import GramFeatureExtractor, degrade

    detail = check.detail_side()
    if detail is not None and detail > check.long_side:
        raise ClassifierCheckError(f"--detail ({detail}) must not exceed --long-side ({check.long_side})", usage=True)
    if check.blur and check.shrink is None:
        raise ClassifierCheckError("--blur needs --shrink (the size the held-out copies are made at)", usage=True)
    try:
        items = read_labelled_folder(check.folder, check.column)
        # 4x the working size keeps everything the crops and the detail bottleneck need, and memory small.
        images, labels = load_labelled_images(items, long_side=max(512, 4 * check.long_side))
    except LabelledFolderError as exc:
        raise ClassifierCheckError(str(exc)) from exc
    names = sorted(set(labels))
    if len(names) < 2:
        raise ClassifierCheckError(
            f"{check.folder}: cross-validation needs at least two labels, found {', '.join(names)}"
        )
    if check.folds != "loo" and int(check.folds) > len(images):
        raise ClassifierCheckError(f"--folds {check.folds} is more than the {len(images)} images", usage=True)
    if check.positive is not None and check.positive not in names:
        raise ClassifierCheckError(
            f"--positive {check.positive!r} is not a label here; the labels are {', '.join(names)}", usage=True
        )
    try:
        vgg = load_vgg16_features()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ClassifierCheckError(f"cannot load the VGG16 weights: {first_line(exc)}") from exc
    extractor = GramFeatureExtractor(
        vgg, long_side=check.long_side, detail_side=detail, views=check.views, seed=check.seed
    )
    transform = None
    if check.shrink is not None:
        shrink, sigma = check.shrink, check.blur
        transform = lambda image: degrade(image, shrink, sigma)  # noqa: E731
    started = time.perf_counter()
    result = cross_validate(
        lambda: FeatureStyleClassifier(extractor, check.head), images, labels, check.folds, check.seed, transform
    )
    out: dict[str, Any] = {
        "folder": str(check.folder),
        "head": check.head,
        "long_side": check.long_side,
        "detail": detail,
        "views": check.views,
        "shrink": check.shrink,
        "blur": check.blur,
        "seed": check.seed,
        **result.to_dict(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if check.positive is not None:
        out["binary"] = vars(result.binary(check.positive))
    return out


def classifier_check_summary(check: ClassifierCheck, out: dict[str, Any]) -> str:
    """The readable result: accuracy against chance, each label's accuracy, the confusion matrix."""
    n, labels, confusion = out["n"], out["labels"], out["confusion"]
    folds = "leave-one-out" if out["folds"] == n and check.folds == "loo" else f"{out['folds']}-fold"
    tested = (
        f", held-out images shrunk to {check.shrink} px" + (f" and blurred ({check.blur} px)" if check.blur else "")
        if check.shrink
        else ""
    )
    lines = [
        f"{n} images, {len(labels)} labels, {check.head} head, {folds}{tested}",
        f"accuracy {out['accuracy']:.1%} ({round(out['accuracy'] * n)}/{n}); chance {out['chance']:.1%}",
    ]
    width = max(map(len, labels))
    for k, name in enumerate(labels):
        lines.append(f"  {name:<{width}}  {out['per_class'][name]:.0%} of {sum(confusion[k])}")
    cell = max(4, *(len(str(i)) for i in range(len(labels))))
    lines.append(" " * (width + 4) + "predicted: " + " ".join(f"{i:>{cell}}" for i in range(len(labels))))
    for k, (name, row) in enumerate(zip(labels, confusion)):
        lines.append(f"  {k} {name:<{width}}            " + " ".join(f"{v:>{cell}}" for v in row))
    binary = out.get("binary")
    if binary is not None:
        label = binary["label"]
        lines.append(
            f"{label} vs rest: accuracy {binary['accuracy']:.1%}, {label} recognised "
            f"{binary['true_positive_rate']:.0%}, others taken for {label} {binary['false_positive_rate']:.0%}"
        )
    lines.append(f"({out['seconds']:.0f} s)")
    return "\n".join(lines)
