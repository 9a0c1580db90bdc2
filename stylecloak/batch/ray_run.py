"""The batch pipeline on Ray Data: plan on the driver, cloak on a pool of actors, commit on the driver.

    run_batch(BatchRequest(source, destination, settings, TargetRequest("auto")))

1. List the inputs (:func:`~stylecloak.batch.sources.list_inputs`) and read the manifest: an input whose last row
   is a success, whose output exists and whose sha256 is unchanged is skipped.
2. Resolve the target once, before anything is distributed: ``auto`` chooses one style for the batch as
   ``stylecloak cloak DIR`` does (pinned in the destination, so that a rerun and later uploads keep it).
3. Start or join Ray, and stream the remaining inputs through a pool of :class:`~.worker.BatchWorker` actors (one
   per GPU where there are GPUs, else one per ``cpus_per_actor`` cores), each loading the models once.
4. Commit each result on the driver as it arrives: append the row to the manifest (fsync'ed), then move the staged
   output into place (an atomic rename). A crash loses at most the outputs in flight; an output is never written
   by two commits, and a row never claims an output that is not there.
5. An actor that dies (out of memory, a crash) is restarted and its input retried ``max_retries`` times; an input
   that still has no result gets an error row, and the batch goes on.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import first_line
from ..models.weights import sha256_file
from ..outputs import check_writable_folder
from ..settings import CloakSettings
from ..targets.resolve import AUTO, TargetRequest, resolve_target
from .manifest import MANIFEST_NAME, ManifestRow, ManifestWriter, read_manifest, sha256_bytes
from .sources import BatchInput, is_uri, list_inputs, open_filesystem, read_input_bytes
from .worker import STAGING_FOLDER, BatchJob, BatchWorker

# ``auto`` chooses from at most this many inputs, spread evenly over the batch: the style of a portfolio is clear
# from a few hundred works, and the choice's cost grows with every image it looks at.
CHOOSE_FROM = 256


class BatchError(RuntimeError):
    """The batch cannot start (no inputs, an unwritable destination, no Ray, a bad target); one line."""


@dataclass(frozen=True)
class BatchRequest:
    """A batch: cloak every input of ``source`` into ``destination`` with ``settings``.

    ``ray_address``: a running cluster to join (``ray start --head`` prints it); None starts a local Ray with this
    machine's cores and GPUs. ``actors``: how many workers (default: one per GPU, else cores // cpus_per_actor).
    ``max_retries``: how often an input is retried after its worker died.
    """

    source: str
    destination: str
    settings: CloakSettings = field(default_factory=CloakSettings)
    target: TargetRequest = field(default_factory=TargetRequest)
    fmt: str = "png"
    ray_address: str | None = None
    actors: int | None = None
    cpus_per_actor: int = 1
    max_retries: int = 2
    local_cpus: int | None = None  # a local Ray's cores (default: all of this machine's)


@dataclass
class BatchProgress:
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def finished(self) -> int:
        return self.done + self.failed

    def images_per_minute(self) -> float:
        elapsed = time.perf_counter() - self.started
        return 60.0 * self.done / elapsed if elapsed > 0 else 0.0


@dataclass
class BatchSummary:
    total: int
    done: int
    failed: int
    skipped: int
    seconds: float
    target: str
    manifest: Path
    notes: list[str] = field(default_factory=list)


def plan_batch(
    inputs: list[BatchInput], destination: str, fmt: str = "png", source: str = ""
) -> tuple[list[BatchInput], list[BatchInput]]:
    """(to do, already done): done means the manifest's last row for the input is a success, its output exists,
    and the input's sha256 is the one that row records. ``source``: the batch's SRC, needed when it is a URI."""
    rows = read_manifest(Path(destination) / MANIFEST_NAME)
    filesystem = open_filesystem(source)[0] if is_uri(source) else None
    todo, done = [], []
    for item in inputs:
        row = rows.get(item.path)
        output = item.output_path(destination, fmt)
        if row is not None and row.ok and row.output == str(output) and output.is_file():
            try:
                if _input_sha256(source, item, filesystem) == row.sha256:
                    done.append(item)
                    continue
            except (OSError, ValueError):
                pass  # unreadable now: the worker reports it
        todo.append(item)
    return todo, done


def _input_sha256(source: str, item: BatchInput, filesystem: object) -> str:
    if is_uri(source):
        return sha256_bytes(read_input_bytes(source, item, filesystem))
    return sha256_file(item.path)


def _resolve_batch_target(request: BatchRequest, inputs: list[BatchInput]) -> tuple[BatchJob, list[str]]:
    """The job every worker gets: ``auto`` resolved to a name here, once; other non-catalogue targets go to the
    workers as a request."""
    settings = request.settings
    target = request.target
    if target.reference_images or target.target.startswith("sd:"):
        return BatchJob(request.source, request.destination, settings, target, request.fmt, request.cpus_per_actor), []
    if target.target != AUTO:
        return BatchJob(
            request.source,
            request.destination,
            _with_target(settings, target.target),
            None,
            request.fmt,
            request.cpus_per_actor,
        ), []
    import torch

    from .. import __version__
    from ..devices import resolve_device

    step = max(1, len(inputs) // CHOOSE_FROM)
    sample = inputs[::step][:CHOOSE_FROM]
    with tempfile.TemporaryDirectory(prefix="stylecloak-choice-") as copies, torch.random.fork_rng(devices=[]):
        paths = [item.path for item in sample]
        if is_uri(request.source):  # the choice reads local files: copy the sample out of the remote store
            paths = []
            filesystem = open_filesystem(request.source)[0]
            for number, item in enumerate(sample):
                try:
                    data = read_input_bytes(request.source, item, filesystem)
                except (OSError, ValueError):
                    continue  # unreadable: its worker reports it
                path = Path(copies) / f"{number:05d}{PurePosixPath(item.relative).suffix}"
                path.write_bytes(data)
                paths.append(str(path))
        resolved = resolve_target(
            target,
            paths,
            resolve_device(settings.device),
            pin_folder=request.destination,
            encoder_spec=settings.encoder,
            seed=settings.seed,
            fallback=settings.target,
            version=__version__,
        )
    job = BatchJob(
        request.source,
        request.destination,
        _with_target(settings, resolved.name),
        None,
        request.fmt,
        request.cpus_per_actor,
    )
    return job, resolved.notes


def _with_target(settings: CloakSettings, name: str) -> CloakSettings:
    from dataclasses import replace

    return replace(settings, target=name)


def commit(row: ManifestRow, job: BatchJob, item: BatchInput, manifest: ManifestWriter) -> ManifestRow:
    """Make one worker's result final: the row first, then the output moved into place."""
    if row.ok:
        staging = job.staging_path(item)
        if not staging.is_file():
            row = ManifestRow(
                row.input,
                row.sha256,
                None,
                settings=row.settings,
                seconds=row.seconds,
                error=f"the worker's output {staging} is not visible here: the destination must be a "
                "folder that every node shares",
            )
        else:
            manifest.append(row)
            final = Path(row.output)  # type: ignore[arg-type]
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, final)
            return row
    manifest.append(row)
    return row


def run_batch(request: BatchRequest, progress: Callable[[BatchProgress], None] | None = None) -> BatchSummary:
    """Cloak a batch (see the module's steps). Raises :class:`BatchError` when it cannot start."""
    started = time.perf_counter()
    from ..outputs import OutputError
    from ..targets.resolve import TargetResolutionError

    try:
        check_writable_folder(Path(request.destination), "destination folder")
        inputs = list_inputs(request.source, request.destination)
    except (OutputError, ValueError) as exc:
        raise BatchError(str(exc)) from None
    if not inputs:
        raise BatchError(f"{request.source}: no images found")
    todo, done_before = plan_batch(inputs, request.destination, request.fmt, request.source)
    state = BatchProgress(total=len(inputs), skipped=len(done_before))
    try:
        job, notes = _resolve_batch_target(request, todo or inputs)
    except TargetResolutionError as exc:
        raise BatchError(str(exc)) from None
    manifest_path = Path(request.destination) / MANIFEST_NAME
    if progress:
        progress(state)
    if todo:
        with ManifestWriter(manifest_path) as manifest:
            for item, row in _cloak_on_ray(request, job, todo):
                row = commit(row, job, item, manifest)
                if row.ok:
                    state.done += 1
                else:
                    state.failed += 1
                if progress:
                    progress(state)
    _clean_staging(Path(request.destination))
    return BatchSummary(
        len(inputs),
        state.done,
        state.failed,
        state.skipped,
        time.perf_counter() - started,
        job.settings.target,
        manifest_path,
        notes,
    )


def _cloak_on_ray(request: BatchRequest, job: BatchJob, todo: list[BatchInput]):  # type: ignore[no-untyped-def]
    """Yield (input, row) for every input of ``todo``, in the order results arrive."""
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():
        try:
            if request.ray_address:
                ray.init(address=request.ray_address, log_to_driver=False, logging_level=logging.ERROR)
            else:
                ray.init(
                    num_cpus=request.local_cpus or os.cpu_count() or 1,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                )
        except Exception as exc:  # noqa: BLE001 - Ray raises several types for an unreachable cluster
            raise BatchError(f"cannot start or join Ray ({first_line(exc)})") from None
        started_here = True
    try:
        yield from _stream(ray, request, job, todo)
    finally:
        if started_here:
            ray.shutdown()


def _stream(ray, request: BatchRequest, job: BatchJob, todo: list[BatchInput]):  # type: ignore[no-untyped-def]
    import json

    from ray.data import DataContext

    gpus = int(ray.cluster_resources().get("GPU", 0))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = request.actors or (gpus if gpus else max(1, cpus // max(1, request.cpus_per_actor)))
    context = DataContext.get_current()
    saved = (context.max_errored_blocks, context.enable_progress_bars)
    # Ray Data's own INFO lines (plans, log folders) would bury the progress bar; its errors still show.
    data_logger = logging.getLogger("ray.data")
    saved_level = data_logger.level
    data_logger.setLevel(logging.ERROR)
    # An input whose worker died more than max_retries times loses its block, not the batch: it gets an error row.
    context.max_errored_blocks = -1
    context.enable_progress_bars = False  # ours shows done / failed / total instead
    by_path = {item.path: item for item in todo}
    try:
        dataset = ray.data.from_items(
            [{"path": item.path, "relative": item.relative} for item in todo],
            override_num_blocks=min(len(todo), 100_000),
        )
        with warnings.catch_warnings():
            # Ray 2.60 takes the actors' restart bounds only as free "remote args", which it marks deprecated.
            warnings.simplefilter("ignore", DeprecationWarning)
            cloaked = dataset.map_batches(
                _worker_for(job),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=request.cpus_per_actor,
                num_gpus=1 if gpus else 0,
                max_restarts=request.max_retries,
                max_task_retries=request.max_retries,
            )
        for record in cloaked.iter_rows():
            row = ManifestRow(**json.loads(record["row"]))
            item = by_path.pop(row.input, None)
            if item is not None:
                yield item, row
    finally:
        context.max_errored_blocks, context.enable_progress_bars = saved
        data_logger.setLevel(saved_level)
    for item in by_path.values():  # their worker died on every try
        yield (
            item,
            ManifestRow(
                item.path,
                None,
                None,
                settings=job.settings.to_dict(),
                error=f"the worker died {request.max_retries + 1} times on this input (out of memory?)",
            ),
        )


def _worker_for(job: BatchJob) -> type:
    """A worker class that carries the job in itself: Ray then ships it with the class instead of keeping
    constructor arguments in its object store, which a restarted actor might no longer find."""

    class JobWorker(BatchWorker):
        def __init__(self) -> None:
            super().__init__(job)

    return JobWorker


def _clean_staging(destination: Path) -> None:
    staging = destination / STAGING_FOLDER / "staging"
    if staging.is_dir():
        for leftover in staging.iterdir():  # from inputs that failed after staging, or a crash
            leftover.unlink(missing_ok=True)


def _import_ray():  # type: ignore[no-untyped-def]
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise BatchError('the batch path runs on Ray: pip install -e ".[cluster]"') from None
    return ray
