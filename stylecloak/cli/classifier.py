"""``stylecloak style-classifier FOLDER``: the judge's cross-validated accuracy on a labelled folder
(stylecloak.evaluation.classifier_check); parse, call, print."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ..evaluation import classifier_check
    from . import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, _error

    fields = set(classifier_check.ClassifierCheck.__dataclass_fields__) - {"folder"}
    check = classifier_check.ClassifierCheck(Path(args.folder), **{name: getattr(args, name) for name in fields})
    try:
        out = classifier_check.check_classifier(check)
    except classifier_check.ClassifierCheckError as exc:
        _error(str(exc))
        return EXIT_USAGE if exc.usage else EXIT_SOME_FAILED
    print(json.dumps(out) if args.json else classifier_check.classifier_check_summary(check, out))
    return EXIT_OK
