"""The background worker: takes queued jobs one at a time (by default), cloaks their images, and records each
step in the job store, so that a stopped server picks up where it was.

Each image's outputs are written atomically before its item is marked done, so after a crash an item is either
done with all its files, or queued again and cloaked from the start.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import first_line
from ..imaging import ImageInputError, image_to_tensor, load_image, quantize_8bit, save_image
from ..optimize import StepRecord
from ..settings import CloakSettings
from .store import Job, JobStore

# A job the server was stopped in this many times is failed with the reason instead of started again: it may be
# what stops the server (e.g. memory).
MAX_JOB_STARTS = 3


class JobFiles:
    """Where a job's files are. Paths are built from the job id (checked by the app) and item indices only."""

    def __init__(self, data_dir: Path, job_id: str) -> None:
        self.root = data_dir / "jobs" / job_id

    def input(self, stored: str) -> Path:
        return self.root / "input" / stored

    def cloaked(self, index: int) -> Path:
        return self.root / "output" / f"{index:04d}.cloaked.png"

    def view(self, index: int, kind: str) -> Path:
        """``kind``: ``original`` (the upload as 8-bit PNG, for display), ``seen-original``, ``seen-cloaked``."""
        return self.root / "views" / f"{index:04d}.{kind}.png"


@dataclass
class Models:
    """The models shared by every job: loaded once, on the first job."""

    encoder: Any
    perceptual: Any
    device: torch.device
    style_features: Any = None  # VGG16, loaded when a job asks for an automatic target


class _Stop(Exception):
    def __init__(self, why: str) -> None:
        self.why = why


class JobWorker:
    def __init__(
        self,
        store: JobStore,
        data_dir: Path,
        encoder: str = "taef2",
        device: str = "auto",
        threads: int = 1,
        keep_seconds: float = 7 * 24 * 3600,
        models: Models | None = None,
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.encoder_spec = encoder
        self.device_spec = device
        self.thread_count = max(1, threads)
        self.keep_seconds = keep_seconds
        self._models = models
        self._models_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_cleanup = 0.0

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        recovered = self.store.recover_after_restart(MAX_JOB_STARTS)
        if recovered:
            print(
                f"stylecloak serve: {len(recovered)} unfinished job(s) from the last run are back in the queue "
                "or failed with a reason",
                flush=True,
            )
        self.clean_old_jobs()
        self._stopping.clear()
        for number in range(self.thread_count):
            thread = threading.Thread(target=self._loop, name=f"stylecloak-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current step; a job that was running goes back to the queue for the next start."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def notify(self) -> None:
        """A job was queued or cancelled."""
        self._wake.set()

    def clean_old_jobs(self) -> list[str]:
        """Delete finished jobs (rows and files) last changed more than ``keep_seconds`` ago."""
        self._last_cleanup = time.time()
        removed = self.store.finished_before(time.time() - self.keep_seconds)
        for job_id in removed:
            shutil.rmtree(JobFiles(self.data_dir, job_id).root, ignore_errors=True)
            self.store.delete_job(job_id)
        return removed

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if time.time() - self._last_cleanup > 600:
                self.clean_old_jobs()
            job = self.store.claim_next_job()
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self.run_job(job)

    # ------------------------------------------------------------------------------------------------ jobs

    def models(self) -> Models:
        with self._models_lock:
            if self._models is None:
                from ..devices import resolve_device
                from ..models.encoders import load_encoder
                from ..models.lpips import load_lpips

                device = resolve_device(self.device_spec)
                self._models = Models(load_encoder(self.encoder_spec, device), load_lpips("alex", device), device)
            return self._models

    def run_job(self, job: Job) -> None:
        try:
            self._run(job)
        except _Stop as stop:
            if stop.why == "cancel":
                self.store.cancel_open_items(job.id)
                self.store.set_job_state(job.id, "cancelled")
            else:  # the server is stopping: the job resumes on the next start
                self.store.set_job_state(
                    job.id, "queued", note="paused when the server stopped; it resumes on the next start"
                )
        except Exception as exc:  # noqa: BLE001 - a job must end in a state with a reason, whatever went wrong
            self.store.cancel_open_items(job.id)
            self.store.set_job_state(job.id, "failed", error=first_line(exc, 300))

    def _run(self, job: Job) -> None:
        from ..pipeline import Cloaker

        files = JobFiles(self.data_dir, job.id)
        models = self.models()
        settings = CloakSettings.from_presets(
            job.settings["intensity"], job.settings["quality"], encoder=self.encoder_spec, device=str(models.device)
        )
        target = job.target or self._resolve_target(job, files, models)
        cloaker = Cloaker(
            replace(settings, target=target),
            encoder=models.encoder,
            perceptual=models.perceptual,
            target_cache_dir=self.data_dir / "targets",
        )
        for item in job.items:
            if item.state in ("done", "failed", "cancelled"):
                continue
            self._check(job.id)
            self.store.set_item(job.id, item.index, state="running", progress=0.0)
            try:
                report = self._cloak_item(cloaker, files, item.index, item.stored, job.id)
            except (ImageInputError, OSError, ValueError, RuntimeError) as exc:
                self.store.set_item(job.id, item.index, state="failed", error=first_line(exc, 300))
                continue
            self.store.set_item(job.id, item.index, state="done", progress=1.0, report=report)
        finished = self.store.get_job(job.id)
        assert finished is not None
        if any(item.state == "done" for item in finished.items):
            self.store.set_job_state(job.id, "done")
        else:
            self.store.set_job_state(
                job.id, "failed", error="no image of this job could be cloaked; see each image's reason"
            )

    def _resolve_target(self, job: Job, files: JobFiles, models: Models) -> str:
        from ..targets.resolve import TargetRequest, resolve_target

        request = TargetRequest(target=job.settings.get("target", "auto"))
        if request.target == "auto":
            with self._models_lock:  # VGG16 loads once, on the first job that needs a choice
                if models.style_features is None:
                    from ..models.lpips import load_vgg16_features

                    models.style_features = load_vgg16_features(models.device)
        # No pin: the choice is kept with the job, so that a resumed job cloaks its remaining images toward the
        # same style.
        resolved = resolve_target(
            request,
            [files.input(item.stored) for item in job.items],
            models.device,
            encoder_spec=self.encoder_spec,
            fallback=CloakSettings().target,
            vgg=models.style_features,
        )
        self.store.set_job_target(job.id, resolved.name)
        return resolved.name

    def _cloak_item(self, cloaker: Any, files: JobFiles, index: int, stored: str, job_id: str) -> dict[str, Any]:
        from ..evaluation.evaluate import model_view_pair, visibility_map

        source = files.input(stored)
        steps = max(1, cloaker.settings.steps)

        def progress(record: StepRecord) -> None:
            self._check(job_id)
            # Every step moves the bar (a step takes a second or more, so the writes are few). The optimiser may
            # stop early; the final check, saving and the model's view take the last 15%.
            self.store.set_item(job_id, index, progress=min(0.85, 0.85 * (record.step + 1) / (steps + 1)))

        files.cloaked(index).parent.mkdir(parents=True, exist_ok=True)
        report = cloaker.cloak_file(source, files.cloaked(index).parent, fmt="png", progress=progress)
        self.store.set_item(job_id, index, progress=0.9)  # cloaked and saved; the model's view comes next
        written = Path(report.output)
        if written != files.cloaked(index):  # cloak_file names the output after the input's stem
            written.replace(files.cloaked(index))
        self._check(job_id)
        original = quantize_8bit(image_to_tensor(load_image(source).rgb))
        cloaked = image_to_tensor(load_image(files.cloaked(index)).rgb)
        files.view(index, "original").parent.mkdir(parents=True, exist_ok=True)
        save_image(files.view(index, "original"), _uint8(original))
        save_image(files.view(index, "visibility"), visibility_map(original, cloaked))
        if cloaker.encoder.can_decode:
            seen = model_view_pair(
                cloaker.encoder, original.to(cloaker.device), cloaked.to(cloaker.device), cloaker.settings.tile_size
            )
            save_image(files.view(index, "seen-original"), seen[0])
            save_image(files.view(index, "seen-cloaked"), seen[1])
        result = report.to_dict()
        result.pop("input", None)
        result.pop("output", None)  # server paths are not the client's business
        return result

    def _check(self, job_id: str) -> None:
        if self._stopping.is_set():
            raise _Stop("shutdown")
        if self.store.cancel_requested(job_id):
            raise _Stop("cancel")


def _uint8(image: torch.Tensor) -> Any:
    return image[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
