"""``stylecloak batch SRC DST``: a whole archive on Ray (stylecloak.batch); parse, call, print."""

from __future__ import annotations

import argparse
from typing import Any


def run(args: argparse.Namespace) -> int:
    from ..batch.ray_run import BatchError, BatchProgress, BatchRequest, run_batch
    from ..cloak_files import settings_for_options
    from ..targets.resolve import TargetRequest
    from . import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, _error, _note, progress_bar

    try:
        settings = settings_for_options(vars(args))
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    if args.actors is not None and args.actors < 1 or args.cpus_per_actor < 1 or args.max_retries < 0:
        _error("--actors and --cpus-per-actor must be at least 1, --max-retries at least 0")
        return EXIT_USAGE
    cluster = {name: getattr(args, name) for name in ("ray_address", "actors", "cpus_per_actor", "max_retries")}
    target = TargetRequest.from_options(vars(args))
    request = BatchRequest(args.source, args.destination, settings, target, args.format, **cluster)
    bar: Any = None

    def show(state: BatchProgress) -> None:
        nonlocal bar
        bar = bar or progress_bar(total=state.total, initial=state.skipped, unit="image", desc="cloaking")
        bar.n = state.skipped + state.finished
        bar.set_postfix_str(
            f"done {state.done}, failed {state.failed}, skipped {state.skipped}, "
            f"{state.images_per_minute():.1f} images/min",
            refresh=True,
        )

    try:
        summary = run_batch(request, show)
    except BatchError as exc:
        _error(str(exc))
        return EXIT_USAGE
    finally:
        if bar is not None:
            bar.close()
    for note in summary.notes:
        _note(note)
    print(
        f"{summary.done} cloaked, {summary.skipped} already done, {summary.failed} failed, of {summary.total}; "
        f"manifest {summary.manifest}  ({summary.seconds:.0f} s)"
    )
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK
