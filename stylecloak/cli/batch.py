"""``stylecloak batch SRC DST``: a whole archive on Ray (stylecloak.batch); parse, call, print."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

EPILOG = """\
examples:
  stylecloak batch uploads/ protected/                   a local Ray with this machine's cores
  stylecloak batch 'art/**/*.jpg' protected/ --actors 2  a glob; two workers
  stylecloak batch s3://bucket/uploads /mnt/shared/out --ray-address 10.0.0.5:6379
                                                         join a cluster started with `ray start --head`

Outputs keep the inputs' sub-folders and are named as `cloak` names them (<name>.cloaked.png); for the same
settings and seed they are byte for byte what `stylecloak cloak` writes. DST/manifest.jsonl gets one row per
input: its path and sha256, the output, the settings, the figures and the seconds, or the error. Run the same
command again to resume: inputs whose output and row exist with the same sha256 are skipped. On a cluster, DST
must be a folder that every node sees (NFS, a mounted bucket); each worker needs the encoder's weights (run
`stylecloak models fetch taef2` on each node, or set STYLECLOAK_MODELS to a shared folder).
Needs the cluster extra: pip install -e ".[cluster]"
"""


def add_parser(commands: Any, add_cloak_options: Callable[[argparse.ArgumentParser], None]) -> None:
    batch = commands.add_parser(
        "batch",
        help="cloak a whole archive on Ray, resumably (the cluster extra)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Cloak every image of SRC (a folder, walked recursively; a glob; or a URI that pyarrow opens, "
        "such as s3://bucket/prefix) into DST, on a local Ray or a Ray cluster.",
    )
    batch.add_argument("source", metavar="SRC", help="a folder, a glob, or a URI of images")
    batch.add_argument("destination", metavar="DST", help="the folder for the outputs and manifest.jsonl")
    add_cloak_options(batch)
    batch.add_argument(
        "--ray-address",
        metavar="ADDR",
        default=None,
        help="a running Ray cluster to join (default: start a local Ray with this machine's cores)",
    )
    batch.add_argument(
        "--actors",
        type=int,
        default=None,
        metavar="N",
        help="how many workers, each holding the models (default: one per GPU, else one per --cpus-per-actor cores)",
    )
    batch.add_argument(
        "--cpus-per-actor",
        type=int,
        default=1,
        metavar="K",
        help="cores for each worker (default: 1; more cores make one image faster, more workers "
        "make many images faster)",
    )
    batch.add_argument(
        "--max-retries",
        type=int,
        default=2,
        metavar="R",
        help="how often an input is tried again after its worker died (default: 2)",
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..batch.ray_run import BatchError, BatchProgress, BatchRequest, run_batch
    from . import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, _error, _target_request, cloak_settings

    try:
        settings = cloak_settings(args)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    if args.actors is not None and args.actors < 1 or args.cpus_per_actor < 1 or args.max_retries < 0:
        _error("--actors and --cpus-per-actor must be at least 1, --max-retries at least 0")
        return EXIT_USAGE
    request = BatchRequest(
        args.source,
        args.destination,
        settings,
        _target_request(args),
        fmt=args.format,
        ray_address=args.ray_address,
        actors=args.actors,
        cpus_per_actor=args.cpus_per_actor,
        max_retries=args.max_retries,
    )
    bar = None

    def show(state: BatchProgress) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                total=state.total, initial=state.skipped, unit="image", file=sys.stderr, disable=None, desc="cloaking"
            )
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
        print(f"stylecloak: {note}", file=sys.stderr)
    print(
        f"{summary.done} cloaked, {summary.skipped} already done, {summary.failed} failed, of {summary.total}; "
        f"manifest {summary.manifest}  ({summary.seconds:.0f} s)"
    )
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK
