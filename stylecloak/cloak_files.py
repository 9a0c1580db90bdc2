"""One cloak run over files and folders: what ``stylecloak cloak`` does, as one library call.

The steps, in order: expand the inputs; check every place the run writes (before any model loads, so that a run
that cannot write says so in seconds, not after minutes of optimising); fetch a pinned non-default encoder that
is missing; load the models (which settles any error in the settings); resolve the target (``auto`` with its
pin, reference images, ``sd:``) for all inputs at once; cloak each file. A file that fails is told in one line
and the run goes on. The caller sees what happens through :class:`CloakEvents` and prints it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import failure_summary, first_line
from .pipeline import CloakReport
from .settings import CloakSettings
from .targets.resolve import AUTO, SD_PREFIX, TargetRequest

StepCallback = Callable[[Any], None]  # called with each optimisation step's record


class CloakRunError(ValueError):
    """The run cannot start; ``usage`` tells a request made wrongly (exit 2) from inputs that cannot serve (1)."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass
class CloakEvents:
    """What the run tells its caller. Every callback is optional."""

    note: Callable[[str], None] = lambda line: None  # what was chosen, what is fetched
    error: Callable[[str], None] = lambda line: None  # one line per unwritable folder or failed file
    # (file name) -> a byte-progress callback (done, total), for a download
    download: Callable[[str], Callable[[int, int | None], None]] | None = None
    # (number, count, path, steps) -> the step callback for that image; image_done(path) after it, however it ended
    image_started: Callable[[int, int, Path, int], StepCallback | None] = lambda n, count, path, steps: None
    image_done: Callable[[Path], None] = lambda path: None
    written: Callable[[CloakReport], None] = lambda report: None


@dataclass
class CloakFilesRequest:
    """The files or folders to cloak (a folder's images, not recursive, our own outputs left out), the settings,
    the target as asked, where the outputs go (None: beside each input) and their format."""

    inputs: Sequence[str | os.PathLike[str]]
    settings: CloakSettings
    target: TargetRequest = field(default_factory=lambda: TargetRequest(AUTO))
    out_dir: str | os.PathLike[str] | None = None
    fmt: str = "png"
    version: str = ""  # recorded with an auto pin


@dataclass
class CloakFilesSummary:
    reports: list[CloakReport]
    failures: int
    total: int

    def failure_line(self) -> str | None:
        """The closing line when some files failed, else None."""
        return failure_summary(self.failures, self.total, "images", "written") if self.failures else None


def settings_for_options(options: Mapping[str, Any]) -> CloakSettings:
    """The settings that the cloak options (``stylecloak.options.CLOAK_OPTIONS``, by their argparse names) ask
    for: the presets of ``intensity`` and ``quality`` with the options given over them. A ``target`` that is
    resolved per run (auto, sd:) is not a catalogue name and stays out; so do options left at None. Raises
    ValueError."""
    overrides = {name: options[name] for name in ("encoder", "device", "seed", "precision") if name in options}
    target = options.get("target", AUTO)
    if target != AUTO and not target.startswith(SD_PREFIX):
        overrides["target"] = target
    overrides |= {name: options[name] for name in ("steps", "budget") if options.get(name) is not None}
    if options.get("mimic_downscales"):
        overrides["mimic_downscales"] = tuple(options["mimic_downscales"])
    if options.get("mimic_sizes"):
        overrides["mimic_sizes"] = tuple(options["mimic_sizes"])
    if options.get("mimic_size_of"):
        overrides["mimic_size_of"] = options["mimic_size_of"]
    if options.get("mimic_jitter"):
        overrides["mimic_jitter"] = True
    if options.get("view_objective"):
        overrides["view_objective"] = options["view_objective"]
    if options.get("full_size_weight") is not None:
        overrides["full_size_weight"] = float(options["full_size_weight"])
    if options.get("surrogate"):
        overrides["surrogate"] = str(options["surrogate"])
    if options.get("surrogate_weight") is not None:
        overrides["surrogate_weight"] = float(options["surrogate_weight"])
    if options.get("surrogate_mode"):
        overrides["surrogate_mode"] = str(options["surrogate_mode"])
    if options.get("surrogate_guidance") is not None:
        overrides["surrogate_guidance"] = float(options["surrogate_guidance"])
    if options.get("surrogate_levels"):
        overrides["surrogate_levels"] = tuple(options["surrogate_levels"])
    if options.get("target_at_mimic_size") is not None:
        overrides["target_at_mimic_size"] = bool(options["target_at_mimic_size"])
    return CloakSettings.from_presets(options["intensity"], options["quality"], **overrides)


def _needs_resolution(target: TargetRequest) -> bool:
    """A catalogue name is in the settings already; auto, sd: and reference images are resolved per run."""
    return target.target == AUTO or target.target.startswith(SD_PREFIX) or bool(target.reference_images)


def cloak_files(request: CloakFilesRequest, events: CloakEvents | None = None) -> CloakFilesSummary:
    """Cloak every input (see the module's steps). Raises CloakRunError when the run cannot start."""
    from .imaging import ImageInputError, expand_inputs
    from .models.fetch import FetchError
    from .models.registry import ensure_model, models_to_fetch_first
    from .models.weights import ChecksumMismatchError, ModelNotFoundError
    from .outputs import pin_folder, writable_inputs
    from .pipeline import Cloaker
    from .targets.resolve import TargetResolutionError, resolve_target

    events = events or CloakEvents()
    settings = request.settings
    if not _needs_resolution(request.target) and request.target.target != settings.target:
        # A catalogue name in the request is the target asked for: it wins over the settings' default.
        settings = replace(settings, target=request.target.target)
    # 1. The inputs, and the places the run writes.
    inputs = list(expand_inputs(request.inputs))
    if not inputs:
        raise CloakRunError("no images found in the given folders")
    writable, unwritable = writable_inputs(inputs, request.out_dir)
    for line in unwritable:
        events.error(line)
    if not writable:
        raise CloakRunError(failure_summary(len(inputs), len(inputs), "images", "written"))
    # 2. A pinned encoder that is not here is fetched once, after saying so (never the default one).
    for model in models_to_fetch_first(settings.encoder):
        size = f"{model.size_mb:.0f} MB" if model.size_mb else "size not known here"
        events.note(
            f"encoder {model.name} is not here yet; fetching it once into the user cache ({size}; "
            f"pinned; or give a local copy with --encoder {model.name}:PATH)"
        )
        try:
            ensure_model(model, progress_factory=events.download, tell=events.note)
        except (FetchError, ChecksumMismatchError, OSError) as exc:
            raise CloakRunError(str(exc)) from exc
    # 3. The models, before the target choice (which takes a while), so that a bad setting fails at once.
    try:
        cloaker = Cloaker(settings)
    except (ModelNotFoundError, ChecksumMismatchError, KeyError, ValueError, RuntimeError) as exc:
        raise CloakRunError(str(exc).strip("'\""), usage=True) from exc
    # 4. The target, once for all inputs.
    if _needs_resolution(request.target):
        try:
            resolved = resolve_target(
                request.target,
                writable,
                cloaker.device,
                pin_folder=pin_folder(writable, request.out_dir),
                encoder_spec=settings.encoder,
                seed=settings.seed,
                fallback=settings.target,
                version=request.version,
            )
        except TargetResolutionError as exc:
            raise CloakRunError(str(exc), usage=True) from exc
        for note in resolved.notes:
            events.note(note)
        cloaker = cloaker.retarget(resolved.name, resolved.style)
    # 5. Each file; one that fails is told and the others go on.
    summary = CloakFilesSummary([], len(inputs) - len(writable), len(inputs))
    for number, path in enumerate(writable, 1):
        step = events.image_started(number, len(writable), path, cloaker.settings.steps + 1)
        try:
            out_dir = Path(request.out_dir) if request.out_dir is not None else path.parent
            report = cloaker.cloak_file(path, out_dir, fmt=request.fmt, progress=step)
        except (ImageInputError, OSError, ValueError, RuntimeError) as exc:
            summary.failures += 1
            events.image_done(path)
            events.error(f"{path}: {first_line(exc)}")
            continue
        events.image_done(path)
        summary.reports.append(report)
        events.written(report)
    return summary
