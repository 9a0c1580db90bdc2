"""The web app's JSON API on real weights: uploads that must be refused, cancel, isolation between jobs, safety
checks, and a server killed in the middle of a job (a real process, SIGKILL)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")
from fastapi.testclient import TestClient  # noqa: E402

from stylecloak.web.app import WebConfig, create_app  # noqa: E402
from stylecloak.web.uploads import display_name, safe_file_name, unique_names  # noqa: E402
from stylecloak.web.worker import Models  # noqa: E402

from .conftest import load_painting  # noqa: E402
from .webserver import running_server  # noqa: E402

LOCAL = "http://127.0.0.1"


def png_bytes(name: str, long_side: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((load_painting(name, long_side) * 255).round().astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture()
def make_client(tmp_path: Path, encoder, lpips_alex):
    """An app on a fresh data folder, with the session's real models; its worker runs while the client is open."""
    clients = []

    def make(**overrides) -> TestClient:
        config = WebConfig(
            data_dir=tmp_path / "data",
            device="cpu",
            models=Models(encoder, lpips_alex, torch.device("cpu")),
            **overrides,
        )
        client = TestClient(create_app(config), base_url=LOCAL)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def wait_for(client: TestClient, job_id: str, states: tuple[str, ...], timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job stayed {job['state']}")


def upload(client: TestClient, files: list[tuple[str, bytes]], **fields: str):
    return client.post(
        "/api/jobs",
        files=[("files", (name, data, "image/png")) for name, data in files],
        data={"quality": "fast", "target": "ink-hatching", **fields},
    )


def test_job_runs_end_to_end_and_its_files_stay_in_it(make_client, tmp_path: Path) -> None:
    client = make_client()
    wave, oiran = png_bytes("hokusai_great_wave.png", 128), png_bytes("hokusai_oiran_and_kamuro.png", 128)
    # A path in the name must not reach the file system: it is only shown, as its last component.
    response = upload(client, [("../../../outside.png", wave), ("oiran.png", oiran)])
    assert response.status_code == 201, response.text
    job = wait_for(client, response.json()["job"]["id"], ("done", "failed"))
    assert job["state"] == "done", job
    assert [item["name"] for item in job["items"]] == ["outside.png", "oiran.png"]
    assert not (tmp_path / "outside.png").exists() and not (tmp_path.parent / "outside.png").exists()
    for item in job["items"]:
        assert item["state"] == "done"
        assert item["report"]["lpips"] <= item["report"]["budget"]
        assert item["report"]["ssim"] >= 0.93 and item["report"]["ssim_window_min"] >= 0.85
        assert item["report"]["psnr"] >= 30 and item["report"]["max_change"] <= 12
        assert item["report"]["target_progress"] > 0
        assert "output" not in item["report"]  # server paths are not shown
    for kind in ("original", "cloaked", "seen-original", "seen-cloaked", "visibility"):
        image = client.get(f"/api/jobs/{job['id']}/images/1/{kind}")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(image.content)).size == (job["items"][1]["width"], job["items"][1]["height"])
    download = client.get(f"/api/jobs/{job['id']}/images/0/cloaked?download=1")
    assert 'filename="outside.cloaked.png"' in download.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/api/jobs/{job['id']}/zip").content))
    assert sorted(archive.namelist()) == ["oiran.cloaked.png", "outside.cloaked.png", "stylecloak-report.json"]
    report = json.loads(archive.read("stylecloak-report.json"))
    assert report["target"] == "ink-hatching" and len(report["images"]) == 2

    # Another job's URLs do not reach this job's files.
    other = wait_for(client, upload(client, [("one.png", wave)]).json()["job"]["id"], ("done",))
    assert client.get(f"/api/jobs/{other['id']}/images/1/cloaked").status_code == 404
    assert client.get(f"/api/jobs/{'0' * 32}/images/0/cloaked").status_code == 404
    assert client.get("/api/jobs/..%2F..%2Fjobs.sqlite3/zip").status_code in (404, 422)
    assert client.get(f"/api/jobs/{job['id']}/images/0/..%2F..%2F..%2Fjobs.sqlite3").status_code in (404, 422)

    # The estimate now comes from what this server measured.
    assert client.get("/api/options").json()["estimate"]["measured_here"] is True
    # A finished job can be deleted, with its files.
    assert client.delete(f"/api/jobs/{other['id']}").status_code == 204
    assert client.get(f"/api/jobs/{other['id']}").status_code == 404
    assert not (tmp_path / "data" / "jobs" / other["id"]).exists()


def test_bad_uploads_are_refused_with_reasons_and_create_nothing(make_client) -> None:
    client = make_client(max_pixels=100 * 100, max_request_bytes=2_000_000)
    small = png_bytes("hokusai_great_wave.png", 64)
    # Malformed: no files at all, or not multipart.
    assert client.post("/api/jobs", data={"quality": "fast"}).status_code == 422
    assert client.post("/api/jobs", content=b"{}", headers={"content-type": "application/json"}).status_code == 422
    # A non-image with an image extension, and an image over the pixel limit.
    response = upload(
        client,
        [
            ("notes.png", b"these are my notes, not a picture" * 10),
            ("huge.png", png_bytes("hokusai_great_wave.png", 160)),
        ],
    )
    assert response.status_code == 422
    reasons = {r["name"]: r["reason"] for r in response.json()["rejected"]}
    assert "not an image" in reasons["notes.png"]
    assert "too large" in reasons["huge.png"]
    # A truncated image; and a good file beside a bad one: the job runs with the good one, the bad one is listed.
    response = upload(client, [("cut.png", small[: len(small) // 2]), ("good.png", small)])
    assert response.status_code == 201
    assert [r["name"] for r in response.json()["rejected"]] == ["cut.png"]
    assert [i["name"] for i in response.json()["job"]["items"]] == ["good.png"]
    # A request over the size limit is refused before it is read.
    too_big = client.post("/api/jobs", files=[("files", ("big.png", b"\0" * 2_100_000, "image/png"))])
    assert too_big.status_code == 413
    assert len(client.get("/api/jobs").json()) == 1
    # Settings are checked too.
    assert upload(client, [("good.png", small)], target="no-such-style").status_code == 422
    assert upload(client, [("good.png", small)], intensity="extreme").status_code == 422


def test_cancel_a_running_and_a_queued_job(make_client) -> None:
    client = make_client()
    slow = upload(client, [("a.png", png_bytes("hokusai_great_wave.png", 256))] * 3, quality="max").json()["job"]
    queued = upload(client, [("b.png", png_bytes("hokusai_poppies.png", 64))]).json()["job"]
    wait_for(client, slow["id"], ("running",))
    # The second job waits: one job at a time by default.
    assert client.get(f"/api/jobs/{queued['id']}").json()["state"] == "queued"
    cancelled = client.post(f"/api/jobs/{queued['id']}/cancel").json()
    assert cancelled["state"] == "cancelled" and all(i["state"] == "cancelled" for i in cancelled["items"])
    assert client.post(f"/api/jobs/{slow['id']}/cancel").json()["cancel_requested"] is True
    job = wait_for(client, slow["id"], ("cancelled", "done", "failed"), timeout=60)
    assert job["state"] == "cancelled"
    assert all(i["state"] == "cancelled" for i in job["items"][1:])
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204


def test_requests_from_elsewhere_are_refused(make_client) -> None:
    client = make_client()
    assert client.get("/api/options", headers={"host": "evil.example:8765"}).status_code == 403
    assert client.get("/api/options", headers={"host": "localhost:8765"}).status_code == 200
    refused = client.post(
        "/api/jobs",
        headers={"origin": "http://evil.example"},
        files=[("files", ("a.png", png_bytes("hokusai_poppies.png", 64), "image/png"))],
    )
    assert refused.status_code == 403
    assert client.get("/openapi.json").json()["paths"]["/api/jobs"]["post"]


def test_a_token_is_needed_when_one_is_set(make_client) -> None:
    client = make_client(token="s3cret", remote=True)
    assert client.get("/api/options").status_code == 401
    assert client.get("/api/options", headers={"authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/api/options", headers={"x-stylecloak-token": "wrong"}).status_code == 401
    # Opening the page with ?token= sets a cookie, so the page's own requests need nothing more.
    assert client.get("/?token=s3cret").status_code == 200
    assert client.get("/api/options").status_code == 200


def test_old_finished_jobs_are_cleaned(make_client, tmp_path: Path) -> None:
    client = make_client(keep_hours=0.0)
    job = upload(client, [("a.png", png_bytes("hokusai_poppies.png", 64))]).json()["job"]
    wait_for(client, job["id"], ("done",))
    removed = client.app.state.worker.clean_old_jobs()
    assert job["id"] in removed
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404
    assert not (tmp_path / "data" / "jobs" / job["id"]).exists()


def test_a_job_survives_the_server_being_killed(tmp_path: Path) -> None:
    """SIGKILL in the middle of a job: after a restart the job goes on, the images finished before are kept."""
    data, log = tmp_path / "data", tmp_path / "server.log"
    images = [
        (f"{i}.png", png_bytes(name, 192))
        for i, name in enumerate(["hokusai_great_wave.png", "hokusai_poppies.png", "hokusai_ejiri_in_suruga.png"])
    ]
    with running_server(data, log) as server:
        job = server.post_files(images, quality="default", target="ink-hatching")["job"]
        server.wait_for(job["id"], lambda j: j["items"][0]["state"] == "done" and j["items"][1]["state"] == "running")
        first_report = server.get(f"/api/jobs/{job['id']}")["items"][0]["report"]
        server.kill()
    with running_server(data, log) as server:
        resumed = server.wait_for(job["id"], lambda j: j["state"] in ("done", "failed", "cancelled"))
        assert resumed["state"] == "done", resumed
        assert "restart" in resumed["note"]
        assert resumed["items"][0]["report"] == first_report  # kept, not cloaked again
        assert all(i["state"] == "done" and i["report"]["lpips"] <= i["report"]["budget"] for i in resumed["items"])
        archive = zipfile.ZipFile(io.BytesIO(server.get_bytes(f"/api/jobs/{job['id']}/zip")))
        assert len([n for n in archive.namelist() if n.endswith(".png")]) == 3


def test_names_from_clients_are_made_safe() -> None:
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("C:\\Users\\me\\art.png") == "art.png"
    assert display_name("\x00\x1b.hidden.png\n") == "hidden.png"
    assert display_name("") == "image"
    assert safe_file_name("café über/ü.png") == "u.png"
    assert safe_file_name('a"b;c.png') == "a_b_c.png"
    assert unique_names(["a.png", "A.png", "a.png", "b"]) == ["a.png", "A-2.png", "a-3.png", "b"]


def test_serve_refuses_a_network_address_without_flag_and_token(capsys) -> None:
    from stylecloak.cli import main

    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--allow-remote"]) == 2
    assert "token" in capsys.readouterr().err


def test_serve_reports_a_bad_data_folder_and_a_busy_port(tmp_path: Path, capsys) -> None:
    import socket

    from stylecloak.cli import main

    (tmp_path / "a-file").write_text("x")
    assert main(["serve", "--data", str(tmp_path / "a-file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--data", str(tmp_path / "data"), "--port", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err


def test_odd_image_modes_are_cloaked_correctly(make_client) -> None:
    """RGBA, 16-bit grey, CMYK and an EXIF-rotated JPEG: each is cloaked upright, with its alpha kept."""
    client = make_client()
    rgb = (load_painting("hokusai_poppies.png", 64) * 255).round().astype(np.uint8)
    files = {}
    buffer = io.BytesIO()
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
    files["alpha.png"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray((rgb.mean(axis=2) * 257).astype(np.uint16)).save(buffer, "PNG")
    files["grey16.png"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buffer, "JPEG", quality=95)
    files["cmyk.jpg"] = buffer.getvalue()
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(buffer, "JPEG", quality=95, exif=exif)
    files["rotated.jpg"] = buffer.getvalue()
    job = upload(client, list(files.items())).json()["job"]
    job = wait_for(client, job["id"], ("done", "failed"))
    assert [item["state"] for item in job["items"]] == ["done"] * 4, job
    height, width = rgb.shape[:2]
    sizes = {item["name"]: (item["width"], item["height"]) for item in job["items"]}
    assert sizes["rotated.jpg"] == (height, width)  # shown and cloaked upright
    for item in job["items"]:
        cloaked = Image.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/images/{item['index']}/cloaked").content))
        assert cloaked.size == (item["width"], item["height"])
        assert item["report"]["lpips"] <= item["report"]["budget"]
        if item["name"] == "alpha.png":
            assert cloaked.mode == "RGBA" and np.asarray(cloaked)[..., 3].max() == 128


def test_the_job_object_is_typed_in_the_openapi_document(make_client) -> None:
    spec = make_client().get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert set(schemas["JobOut"]["properties"]["state"]["enum"]) == {"queued", "running", "done", "failed", "cancelled"}
    assert schemas["ItemOut"]["properties"]["state"]["enum"] == schemas["JobOut"]["properties"]["state"]["enum"]
    assert schemas["JobOut"]["properties"]["items"]["items"]["$ref"].endswith("/ItemOut")
    job_schema = spec["paths"]["/api/jobs/{job_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert job_schema["$ref"].endswith("/JobOut")


def test_progress_moves_at_least_once_per_step(make_client, monkeypatch: pytest.MonkeyPatch) -> None:
    from stylecloak.web.store import JobStore

    seen: list[float] = []
    original_set_item = JobStore.set_item

    def recording(self, job_id, index, state=None, progress=None, **kwargs):  # type: ignore[no-untyped-def]
        if progress is not None and state is None:
            seen.append(progress)
        return original_set_item(self, job_id, index, state=state, progress=progress, **kwargs)

    monkeypatch.setattr(JobStore, "set_item", recording)
    client = make_client()
    job = wait_for(
        client,
        upload(client, [("wave.png", png_bytes("hokusai_great_wave.png", 64))]).json()["job"]["id"],
        ("done", "failed"),
    )
    assert job["state"] == "done", job
    steps = job["items"][0]["report"]["steps"]
    assert len(seen) >= steps + 1 and seen == sorted(seen)  # one write per step, then the final phases
    assert seen[-1] >= 0.9
