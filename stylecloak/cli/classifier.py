"""``stylecloak style-classifier FOLDER``: the offline style classifier's cross-validated accuracy on a labelled
folder (the judge behind the protection success rate: know how good it is before trusting its verdicts)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..errors import first_line

DESCRIPTION = """\
Cross-validate the offline style classifier (VGG16 Gram features with a nearest-centroid or a linear head) on a
labelled folder: FOLDER/manifest.csv (columns file and style, or the column given by --column), or
FOLDER/LABEL/*.png. Prints the accuracy, each label's accuracy and the confusion matrix."""

EPILOG = """\
examples:
  stylecloak style-classifier paintings/                         leave-one-out, nearest-centroid head
  stylecloak style-classifier paintings/ --head linear --folds 5
  stylecloak style-classifier paintings/ --shrink 128 --blur 0.8 score on small, soft copies (like a mimic's
                                                                 outputs); training images stay as they are
  stylecloak style-classifier paintings/ --positive ukiyo-e      also the label-vs-rest view

A label with a single image cannot be predicted when that image is held out, so it counts as an error; the
"chance" line is the accuracy of always answering the most common label.
"""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# classifier.py's WORKING_LONG_SIDE, DETAIL_LONG_SIDE and TRAINING_VIEWS, repeated so that registering the command
# does not import torch (every `stylecloak` call would pay for it); a test keeps them equal.
WORKING_LONG_SIDE, DETAIL_LONG_SIDE, TRAINING_VIEWS = 128, 96, 6


def _folds(text: str) -> int | str:
    if text.lower() == "loo":
        return "loo"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of folds (2 or more) or 'loo', got {text!r}"
        ) from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"need at least 2 folds, got {value}")
    return value


def _positive_int(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _sigma(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels, got {text!r}") from None
    if not 0 <= value <= 20:
        raise argparse.ArgumentTypeError(f"blur must lie between 0 and 20 px, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``style-classifier`` on the ``stylecloak`` command's sub-parsers."""
    parser = subparsers.add_parser(
        "style-classifier",
        help="cross-validated accuracy of the offline style classifier on a labelled folder",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", metavar="FOLDER", help="labelled images: manifest.csv, or one sub-folder per label")
    parser.add_argument(
        "--head",
        choices=["centroid", "linear"],
        default="centroid",
        help="nearest class centroid (default) or L2-regularised logistic regression",
    )
    parser.add_argument(
        "--folds",
        type=_folds,
        default="loo",
        metavar="N|loo",
        help="stratified N-fold cross-validation, or leave-one-out (default)",
    )
    parser.add_argument(
        "--long-side",
        type=_positive_int(16),
        default=WORKING_LONG_SIDE,
        metavar="PX",
        help=f"working size the features are computed at (default: {WORKING_LONG_SIDE})",
    )
    parser.add_argument(
        "--detail",
        type=_positive_int(0),
        default=None,
        metavar="PX",
        help=f"images pass through this long side first, so sharp and soft images carry the same "
        f"detail; 0 turns it off (default: 3/4 of --long-side, {DETAIL_LONG_SIDE} px at "
        f"{WORKING_LONG_SIDE})",
    )
    parser.add_argument(
        "--views",
        type=_positive_int(0),
        default=TRAINING_VIEWS,
        help=f"augmented views per training image: crops, smaller softer copies (default: {TRAINING_VIEWS})",
    )
    parser.add_argument("--column", default="style", help="the manifest column holding the labels (default: style)")
    parser.add_argument(
        "--shrink",
        type=_positive_int(16),
        default=None,
        metavar="PX",
        help="score the held-out images after shrinking them to PX long side",
    )
    parser.add_argument(
        "--blur",
        type=_sigma,
        default=0.0,
        metavar="SIGMA",
        help="and blurring them by SIGMA px (Gaussian), after --shrink",
    )
    parser.add_argument(
        "--positive", metavar="LABEL", help="also report LABEL against the rest (e.g. the artist's style)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for folds and views (default: 0)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def _error(message: str) -> None:
    print(f"stylecloak: error: {message}", file=sys.stderr)


def _table(labels: list[str], confusion: list[list[int]]) -> str:
    width = max(len(name) for name in labels)
    cell = max(4, *(len(str(i)) for i in range(len(labels))))
    lines = [" " * (width + 4) + "predicted: " + " ".join(f"{i:>{cell}}" for i in range(len(labels)))]
    for k, (name, row) in enumerate(zip(labels, confusion)):
        lines.append(f"  {k} {name:<{width}}            " + " ".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``style-classifier``; returns the exit code (errors are one line on stderr)."""
    from ..evaluation.labelled import LabelledFolderError, load_labelled_images, read_labelled_folder

    if args.detail is None:  # the default bottleneck keeps its proportion to the working size
        detail: int | None = max(8, round(args.long_side * DETAIL_LONG_SIDE / WORKING_LONG_SIDE))
    else:
        detail = args.detail or None
    if detail is not None and detail > args.long_side:
        _error(f"--detail ({detail}) must not exceed --long-side ({args.long_side})")
        return EXIT_USAGE
    if args.blur and args.shrink is None:
        _error("--blur needs --shrink (the size the held-out copies are made at)")
        return EXIT_USAGE
    try:
        items = read_labelled_folder(args.folder, args.column)
        # 4x the working size keeps everything the crops and the detail bottleneck need, and memory small.
        images, labels = load_labelled_images(items, long_side=max(512, 4 * args.long_side))
    except LabelledFolderError as exc:
        _error(str(exc))
        return EXIT_FAILED
    names = sorted(set(labels))
    if len(names) < 2:
        _error(f"{args.folder}: cross-validation needs at least two labels, found {', '.join(names)}")
        return EXIT_FAILED
    if args.folds != "loo" and args.folds > len(images):
        _error(f"--folds {args.folds} is more than the {len(images)} images")
        return EXIT_USAGE
    if args.positive is not None and args.positive not in names:
        _error(f"--positive {args.positive!r} is not a label here; the labels are {', '.join(names)}")
        return EXIT_USAGE

    from ..evaluation.classifier import GramFeatureExtractor, GramStyleClassifier, cross_validate, degrade
    from ..models.lpips import load_vgg16_features

    try:
        vgg = load_vgg16_features()
    except (OSError, ValueError, RuntimeError) as exc:
        _error(f"cannot load the VGG16 weights: {first_line(exc)}")
        return EXIT_FAILED
    extractor = GramFeatureExtractor(
        vgg, long_side=args.long_side, detail_side=detail, views=args.views, seed=args.seed
    )
    transform = None
    if args.shrink is not None:
        shrink, sigma = args.shrink, args.blur
        transform = lambda image: degrade(image, shrink, sigma)  # noqa: E731
    started = time.perf_counter()
    result = cross_validate(
        lambda: GramStyleClassifier(extractor, args.head), images, labels, args.folds, args.seed, transform
    )
    seconds = time.perf_counter() - started

    binary = result.binary(args.positive) if args.positive is not None else None
    if args.json:
        out: dict[str, Any] = {
            "folder": str(args.folder),
            "head": args.head,
            "long_side": args.long_side,
            "detail": detail,
            "views": args.views,
            "shrink": args.shrink,
            "blur": args.blur,
            "seed": args.seed,
            **result.to_dict(),
            "seconds": round(seconds, 1),
        }
        if binary is not None:
            out["binary"] = vars(binary)
        print(json.dumps(out))
        return EXIT_OK
    folds = "leave-one-out" if result.folds == result.n and args.folds == "loo" else f"{result.folds}-fold"
    tested = (
        f", held-out images shrunk to {args.shrink} px" + (f" and blurred ({args.blur} px)" if args.blur else "")
        if args.shrink
        else ""
    )
    print(f"{result.n} images, {len(result.labels)} labels, {args.head} head, {folds}{tested}")
    correct = round(result.accuracy * result.n)
    print(f"accuracy {result.accuracy:.1%} ({correct}/{result.n}); chance {result.chance:.1%}")
    for k, name in enumerate(result.labels):
        count = sum(result.confusion[k])
        print(f"  {name:<{max(map(len, result.labels))}}  {result.per_class[name]:.0%} of {count}")
    print(_table(result.labels, result.confusion))
    if binary is not None:
        print(
            f"{binary.label} vs rest: accuracy {binary.accuracy:.1%}, {binary.label} recognised "
            f"{binary.true_positive_rate:.0%}, others taken for {binary.label} {binary.false_positive_rate:.0%}"
        )
    print(f"({seconds:.0f} s)")
    return EXIT_OK
