"""``stylecloak mimic``: the mimicry attack in small, on clean and on cloaked art (stylecloak.evaluation.
mimicry_run); parse, call, print."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def run(args: argparse.Namespace) -> int:
    from ..errors import first_line
    from ..evaluation import mimicry_run as mimicry
    from . import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, _error, _note, progress_bar

    fields = set(mimicry.MimicryOptions.__dataclass_fields__) - {"clean", "cloaked", "others"}
    options = mimicry.MimicryOptions(
        Path(args.clean), Path(args.cloaked), Path(args.others), **{name: getattr(args, name) for name in fields}
    )
    bars: dict[tuple[str, str], Any] = {}

    def progress(condition: str, phase: str, done: int, total: int) -> None:
        key = (condition, phase)
        if key not in bars:
            bars[key] = progress_bar(total=total, desc=f"{condition}: {phase}", unit="step", leave=False)
        bars[key].update(done - bars[key].n)
        if done == total:
            bars.pop(key).close()

    try:
        prepared = mimicry.prepare_mimicry(options, progress, tell=_note)
    except mimicry.MimicryUsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    request = prepared.request
    _note(
        f"mimic on {len(request.clean)} images of the artist and {sum(map(len, request.others.values()))} of "
        f"{len(request.others)} other styles; {prepared.runs()} {args.attack} runs of {prepared.steps()} steps"
    )
    out_dir = Path(args.out) if args.out else Path(f"mimicry-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        report, result = mimicry.run_prepared_mimicry(prepared, out_dir)
    except (ValueError, RuntimeError) as exc:
        _error(first_line(exc))
        return EXIT_SOME_FAILED
    print(json.dumps(result) if args.json else mimicry.mimicry_summary(report, result))
    return EXIT_OK
