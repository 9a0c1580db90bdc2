"""The web app: one HTML page and a JSON API under ``/api/`` (schema at ``/openapi.json``, docs at ``/docs``).

    POST   /api/jobs                          create a job: images (multipart) + intensity, quality, target
    GET    /api/jobs                          every job this server keeps
    GET    /api/jobs/{id}                     a job's state and per-image progress and reports
    POST   /api/jobs/{id}/cancel              cancel (a queued job at once, a running one at its next step)
    DELETE /api/jobs/{id}                     delete a finished job and its files
    GET    /api/jobs/{id}/images/{n}/{kind}   original | cloaked | seen-original | seen-cloaked | visibility (PNG)
    GET    /api/jobs/{id}/zip                 every cloaked image of a job and a report, as one ZIP
    GET    /api/options                       presets, target styles, limits and a time estimate for the page

Safety: the app checks the Host header (against DNS rebinding) and the Origin of every state-changing request;
with a token set, every request must carry it. Uploads are decoded to know what they are; their names are only
displayed. Files are served by job id and image index, never by a path from the request.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import shutil
import statistics
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from .. import __version__
from ..settings import INTENSITY_PRESETS, QUALITY_PRESETS
from ..targets import available_targets
from .schema import JobCreated, JobOut
from .store import FINISHED_STATES, JobStore, NewItem, new_job_id
from .uploads import UploadRejected, check_upload, safe_file_name, unique_names
from .worker import JobFiles, JobWorker, Models

JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
IMAGE_KINDS = ("original", "cloaked", "seen-original", "seen-cloaked", "visibility")
TOKEN_COOKIE = "stylecloak_token"
# The time estimate before this server has measured its own speed. `stylecloak cloak --json` (default quality,
# target ink-hatching) on hokusai_great_wave resized to 256, 512 and 1024 px took 3.8, 4.5 and 7.6 s per
# megapixel per step on the 2-core development CPU in fp32, which is what most laptops run (a CPU with native
# bf16 is about twice as fast); after its first images the server uses its own median.
DEFAULT_SECONDS_PER_MEGAPIXEL_STEP = 6.0
DEFAULT_SECONDS_PER_IMAGE = 1.0


@dataclass
class WebConfig:
    data_dir: Path
    encoder: str = "taef2"
    device: str = "auto"
    token: str | None = None
    # Allow requests whose Host is not a loopback name (serving on a network address, behind the token).
    remote: bool = False
    max_file_bytes: int = 50_000_000
    max_request_bytes: int = 500_000_000
    max_files: int = 200
    max_pixels: int = 40_000_000
    keep_hours: float = 7 * 24
    worker_threads: int = 1
    start_worker: bool = True
    models: Models | None = field(default=None, repr=False)  # preloaded models (tests share one set)


def create_app(config: WebConfig) -> FastAPI:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(config.data_dir / "jobs.sqlite3")
    worker = JobWorker(
        store,
        config.data_dir,
        encoder=config.encoder,
        device=config.device,
        threads=config.worker_threads,
        keep_seconds=config.keep_hours * 3600,
        models=config.models,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if config.start_worker:
            worker.start()
        yield
        worker.stop()

    app = FastAPI(
        title="stylecloak",
        version=__version__,
        lifespan=lifespan,
        description="Cloak artwork against style mimicry. Create a job with images, poll it, fetch results.",
    )
    app.state.store = store
    app.state.worker = worker
    app.state.config = config

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        refusal = _refusal(request, config)
        if refusal is not None:
            return refusal
        response = await call_next(request)
        if config.token and request.url.path == "/" and request.query_params.get("token") == config.token:
            # The page was opened with ?token=...: its own requests carry the token from now on.
            response.set_cookie(TOKEN_COOKIE, config.token, httponly=True, samesite="strict")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        html = resources.files("stylecloak.web").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/api/options")
    def options() -> dict[str, Any]:
        """What the page offers, with plain-language explanations, the limits, and a time estimate."""
        per_mp_step, per_image, measured = _speed(store)
        return {
            "version": __version__,
            # The texts come from the presets: one source for the CLI, the page and the API.
            "intensities": [
                {"name": k, "budget": p.budget, "description": p.description} for k, p in INTENSITY_PRESETS.items()
            ],
            "qualities": [
                {"name": k, "steps": p.steps, "description": p.description} for k, p in QUALITY_PRESETS.items()
            ],
            "targets": [
                {"name": "auto", "description": "chosen for your set of images: far from your style, but reachable"}
            ]
            + [{"name": t.name, "description": t.description} for t in available_targets()],
            "defaults": {"intensity": "medium", "quality": "default", "target": "auto"},
            "limits": {
                "max_file_bytes": config.max_file_bytes,
                "max_request_bytes": config.max_request_bytes,
                "max_files": config.max_files,
                "max_pixels": config.max_pixels,
            },
            "estimate": {
                "seconds_per_megapixel_step": per_mp_step,
                "seconds_per_image": per_image,
                "measured_here": measured,
            },
        }

    @app.post("/api/jobs", status_code=201, response_model=JobCreated)
    async def create_job(
        files: Annotated[list[UploadFile], File(description="the images to cloak")],
        intensity: Annotated[Literal["low", "medium", "high"], Form()] = "medium",
        quality: Annotated[Literal["fast", "default", "max"], Form()] = "default",
        target: Annotated[str, Form(description="a target style name, or auto")] = "auto",
    ) -> JSONResponse:
        """Check every upload from its bytes; create a job with the usable ones. Unusable files are listed in
        ``rejected`` with a reason; if none is usable, nothing is created (422)."""
        if target != "auto" and target not in {t.name for t in available_targets()}:
            raise HTTPException(422, f"unknown target style {target!r}; see /api/options")
        if len(files) > config.max_files:
            raise HTTPException(413, f"too many files ({len(files)}); at most {config.max_files} per job")
        accepted: list[tuple[NewItem, bytes]] = []
        rejected: list[dict[str, str]] = []
        for upload in files:
            data = await _read_capped(upload, config.max_file_bytes)
            try:
                checked = check_upload(upload.filename, data, config.max_file_bytes, config.max_pixels)
            except UploadRejected as exc:
                rejected.append({"name": exc.name, "reason": exc.reason})
                continue
            stored = f"{len(accepted):04d}{checked.extension}"
            accepted.append((NewItem(checked.name, stored, checked.width, checked.height), data))
        if not accepted:
            return JSONResponse(
                {"detail": "none of the files is an image that can be cloaked", "rejected": rejected}, 422
            )
        job_id = new_job_id()
        files_of_job = JobFiles(config.data_dir, job_id)
        for item, data in accepted:
            path = files_of_job.input(item.stored)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        job = store.create_job(
            {"intensity": intensity, "quality": quality, "target": target},
            [item for item, _ in accepted],
            job_id=job_id,
        )
        worker.notify()
        return JSONResponse({"job": job.to_dict(), "rejected": rejected}, 201)

    @app.get("/api/jobs", response_model=list[JobOut])
    def list_jobs() -> list[dict[str, Any]]:
        return [job.to_dict() for job in store.list_jobs()]

    @app.get("/api/jobs/{job_id}", response_model=JobOut)
    def get_job(job_id: Annotated[str, PathParam(pattern=JOB_ID_PATTERN)]) -> dict[str, Any]:
        return _job_or_404(store, job_id).to_dict()

    @app.post("/api/jobs/{job_id}/cancel", response_model=JobOut)
    def cancel_job(job_id: Annotated[str, PathParam(pattern=JOB_ID_PATTERN)]) -> dict[str, Any]:
        job = store.request_cancel(job_id)
        if job is None:
            raise HTTPException(404, "no such job")
        worker.notify()
        return job.to_dict()

    @app.delete("/api/jobs/{job_id}", status_code=204)
    def delete_job(job_id: Annotated[str, PathParam(pattern=JOB_ID_PATTERN)]) -> Response:
        job = _job_or_404(store, job_id)
        if job.state not in FINISHED_STATES:
            raise HTTPException(409, "the job is still queued or running; cancel it first")
        shutil.rmtree(JobFiles(config.data_dir, job_id).root, ignore_errors=True)
        store.delete_job(job_id)
        return Response(status_code=204)

    @app.get(
        "/api/jobs/{job_id}/images/{index}/{kind}",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}},
    )
    def image(
        job_id: Annotated[str, PathParam(pattern=JOB_ID_PATTERN)],
        index: Annotated[int, PathParam(ge=0)],
        kind: Literal["original", "cloaked", "seen-original", "seen-cloaked", "visibility"],
        download: Annotated[bool, Query()] = False,
    ) -> FileResponse:
        job = _job_or_404(store, job_id)
        item = next((i for i in job.items if i.index == index), None)
        if item is None:
            raise HTTPException(404, "no such image in this job")
        files = JobFiles(config.data_dir, job_id)
        path = files.cloaked(index) if kind == "cloaked" else files.view(index, kind)
        if item.state != "done" or not path.is_file():
            raise HTTPException(404, "this image is not ready")
        name = _output_name(item.name) if kind == "cloaked" else f"{Path(safe_file_name(item.name)).stem}.{kind}.png"
        return FileResponse(
            path,
            media_type="image/png",
            filename=name if download else None,
            content_disposition_type="attachment" if download else "inline",
            headers={"Cache-Control": "no-cache"},
        )

    @app.get("/api/jobs/{job_id}/zip", responses={200: {"content": {"application/zip": {}}}})
    def job_zip(job_id: Annotated[str, PathParam(pattern=JOB_ID_PATTERN)]) -> Response:
        job = _job_or_404(store, job_id)
        done = [item for item in job.items if item.state == "done"]
        if not done:
            raise HTTPException(404, "no cloaked image in this job yet")
        files = JobFiles(config.data_dir, job_id)
        names = unique_names([_output_name(item.name) for item in done])
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:  # PNG is compressed already
            for item, name in zip(done, names):
                archive.write(files.cloaked(item.index), name)
            report = [{"file": name, "name": item.name, **(item.report or {})} for item, name in zip(done, names)]
            archive.writestr(
                "stylecloak-report.json", json.dumps({"job": job.id, "target": job.target, "images": report}, indent=2)
            )
        return Response(
            buffer.getvalue(),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="stylecloak-{job.id[:8]}.zip"'},
        )

    return app


# ----------------------------------------------------------------------------------------------------- helpers


def _job_or_404(store: JobStore, job_id: str) -> Any:
    job = store.get_job(job_id)
    if job is None:
        raise HTTPException(404, "no such job (finished jobs are deleted after a while)")
    return job


def _output_name(name: str) -> str:
    return f"{Path(safe_file_name(name)).stem}.cloaked.png"


async def _read_capped(upload: UploadFile, limit: int) -> bytes:
    """Read at most ``limit + 1`` bytes: enough to tell that a file is over the limit without holding all of it."""
    chunks, size = [], 0
    while size <= limit:
        chunk = await upload.read(min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _speed(store: JobStore) -> tuple[float, float, bool]:
    """Seconds per megapixel-step and per image: the median of this server's recent images, else the defaults."""
    rates = []
    for report in store.throughput_samples():
        megapixels = report.get("width", 0) * report.get("height", 0) / 1e6
        steps = report.get("steps") or 0
        if megapixels > 0 and steps > 0 and report.get("seconds"):
            rates.append(max(0.0, report["seconds"] - DEFAULT_SECONDS_PER_IMAGE) / (megapixels * steps))
    if rates:
        return round(statistics.median(rates), 3), DEFAULT_SECONDS_PER_IMAGE, True
    return DEFAULT_SECONDS_PER_MEGAPIXEL_STEP, DEFAULT_SECONDS_PER_IMAGE, False


_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _host_name(value: str) -> str:
    return (urlsplit(f"//{value}").hostname or "").lower()


def _refusal(request: Request, config: WebConfig) -> Response | None:
    """Why a request is refused, or None. Order: Host, token, Origin, size."""
    host = request.headers.get("host", "")
    if not config.remote and _host_name(host) not in _LOOPBACK_HOSTS:
        # A local server answers only to its loopback names: a web page cannot reach it through DNS rebinding.
        return JSONResponse({"detail": "this server only answers on 127.0.0.1 / localhost"}, 403)
    if config.token and not _has_token(request, config.token):
        return JSONResponse({"detail": "a token is needed: open the link that `stylecloak serve` printed"}, 401)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc.lower() != host.lower():
            # Another site's page may not drive this server from the artist's browser.
            return JSONResponse({"detail": "cross-site requests are refused"}, 403)
        if request.url.path == "/api/jobs":
            length = request.headers.get("content-length")
            if length is None or not re.fullmatch(r"\d+", length):
                return JSONResponse({"detail": "uploads need a Content-Length header"}, 411)
            if int(length) > config.max_request_bytes:
                return JSONResponse(
                    {
                        "detail": f"upload too large ({int(length) / 1e6:.0f} MB); at most "
                        f"{config.max_request_bytes / 1e6:.0f} MB per job"
                    },
                    413,
                )
    return None


def _has_token(request: Request, token: str) -> bool:
    candidates = [
        request.headers.get("x-stylecloak-token"),
        request.cookies.get(TOKEN_COOKIE),
        request.query_params.get("token") if request.url.path == "/" else None,
    ]
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        candidates.append(authorization[7:].strip())
    return any(c is not None and secrets.compare_digest(c.encode(), token.encode()) for c in candidates)
