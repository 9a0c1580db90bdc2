"""``stylecloak models fetch`` against a local HTTP server on 127.0.0.1: success, a checksum mismatch, a transfer
that breaks off and resumes, and offline."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from stylecloak.models.fetch import FetchError, fetch_file
from stylecloak.models.registry import KNOWN_MODELS, KnownModel, fetch_model
from stylecloak.models.weights import ChecksumMismatchError, ModelFile

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /model.bin with Range support; /flaky.bin breaks off halfway on its first request."""

    requests: list[str] = []
    flaky_served = False

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        type(self).requests.append(f"{self.path} {self.headers.get('Range', '')}")
        if self.path not in ("/model.bin", "/flaky.bin"):
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/flaky.bin" and not type(self).flaky_served:
            type(self).flaky_served = True
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.close()  # the connection drops mid-transfer
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    _Handler.requests = []
    _Handler.flaky_served = False
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _model(url: str, sha256: str) -> KnownModel:
    return KnownModel("tiny", "a test model", "MIT", url, files=(ModelFile("tiny", "model.bin", sha256, url, "MIT"),))


def test_fetch_downloads_and_verifies(server: str, tmp_path: Path) -> None:
    folder = fetch_model(_model(f"{server}/model.bin", DIGEST), cache_dir=tmp_path)
    assert (folder / "model.bin").read_bytes() == PAYLOAD
    assert not list(folder.glob("*.part"))
    # Already there and verified: no second download.
    fetch_model(_model(f"{server}/model.bin", DIGEST), cache_dir=tmp_path)
    assert len(_Handler.requests) == 1


def test_a_checksum_mismatch_is_rejected_and_nothing_stays(server: str, tmp_path: Path) -> None:
    with pytest.raises(ChecksumMismatchError, match="rejected"):
        fetch_model(_model(f"{server}/model.bin", "0" * 64), cache_dir=tmp_path)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_an_interrupted_transfer_resumes(server: str, tmp_path: Path) -> None:
    destination = tmp_path / "tiny" / "model.bin"
    with pytest.raises(FetchError, match="resume"):
        fetch_file(f"{server}/flaky.bin", destination, DIGEST)
    part = destination.with_name("model.bin.part")
    assert part.is_file() and 0 < part.stat().st_size < len(PAYLOAD)
    assert not destination.exists()
    seen = []
    fetch_file(f"{server}/flaky.bin", destination, DIGEST, progress=lambda done, total: seen.append((done, total)))
    assert destination.read_bytes() == PAYLOAD and not part.exists()
    assert _Handler.requests[-1] == f"/flaky.bin bytes={len(PAYLOAD) // 2}-"  # only the rest was asked for
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_offline_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening: connection refused, as with no network
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match="offline"):
        fetch_file(f"http://127.0.0.1:{port}/model.bin", tmp_path / "m.bin", DIGEST, timeout=5)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FetchError, match="offline mode"):
        fetch_model(replace(KNOWN_MODELS["sd-vae"], hub_revision="0" * 40), cache_dir=tmp_path)
    assert not any(tmp_path.rglob("*.bin"))


def test_unpinned_models_need_consent(tmp_path: Path) -> None:
    unpinned = replace(KNOWN_MODELS["taesd"], files=tuple(replace(f, sha256="") for f in KNOWN_MODELS["taesd"].files))
    with pytest.raises(FetchError, match="--allow-unpinned"):
        fetch_model(unpinned, cache_dir=tmp_path)
    with pytest.raises(FetchError, match="--allow-unpinned"):
        fetch_model(replace(KNOWN_MODELS["sd-vae"], hub_revision=None), cache_dir=tmp_path)


def test_every_known_model_is_pinned_and_sized() -> None:
    for model in KNOWN_MODELS.values():
        assert model.pinned and model.size_mb, model.name
        if model.hub_repo is not None:
            assert len(model.hub_revision or "") == 40 and int(model.hub_revision, 16) >= 0, model.name
        for spec in model.files:
            assert len(spec.sha256) == 64 and spec.upstream_url and "/raw/main/" not in spec.upstream_url, spec


def test_models_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stylecloak.cli import main

    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    for name in ("taef2", "sd-vae", "sdxl-vae", "flux-vae", "taesd"):
        assert name in listing
    assert "licence MIT" in listing and "present:" in listing
    monkeypatch.setenv("STYLECLOAK_MODELS", str(tmp_path))
    monkeypatch.setenv("STYLECLOAK_CACHE", str(tmp_path / "cache"))
    assert main(["models", "path", "sd-vae"]) == 1
    assert "stylecloak models fetch sd-vae" in capsys.readouterr().err
    monkeypatch.setenv("STYLECLOAK_OFFLINE", "1")
    assert main(["models", "fetch", "taef2"]) == 1
    assert "offline" in capsys.readouterr().err
    assert main(["models", "fetch", "nonesuch"]) == 2


def test_first_cloak_with_a_missing_encoder_fetches_it_after_saying_so(
    small_painting_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one download that needs no `models fetch`: a pinned encoder that is not here, on the first cloak.
    Random TAESD-shaped weights stand in for the release, served from 127.0.0.1 and pinned for this test."""
    import functools
    import json

    import torch

    from stylecloak.cli import main
    from stylecloak.models import taesd
    from stylecloak.models.taesd import TINY_AUTOENCODER_CONFIGS, build_tiny_decoder, build_tiny_encoder

    upstream = tmp_path / "upstream"
    upstream.mkdir()
    torch.manual_seed(0)
    torch.save(build_tiny_encoder(TINY_AUTOENCODER_CONFIGS["taesd"]).state_dict(), upstream / "taesd_encoder.pth")
    torch.save(build_tiny_decoder(TINY_AUTOENCODER_CONFIGS["taesd"]).state_dict(), upstream / "taesd_decoder.pth")
    digests = tuple(
        hashlib.sha256((upstream / f"taesd_{part}.pth").read_bytes()).hexdigest() for part in ("encoder", "decoder")
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(upstream))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        monkeypatch.setitem(taesd._TINY_AUTOENCODER_SHA256, "taesd", digests)
        files = tuple(replace(f, upstream_url=f"{base}/{f.filename}") for f in taesd.tiny_autoencoder_files("taesd"))
        monkeypatch.setitem(KNOWN_MODELS, "taesd", replace(KNOWN_MODELS["taesd"], files=files))
        monkeypatch.setenv("STYLECLOAK_CACHE", str(tmp_path / "cache"))
        cloak = [
            "cloak",
            str(small_painting_file),
            "-o",
            str(tmp_path / "out"),
            "--encoder",
            "taesd",
            "--target",
            "ink-hatching",
            "--steps",
            "2",
            "--json",
        ]
        assert main(cloak) == 0
        captured = capsys.readouterr()
        assert "encoder taesd is not here yet; fetching it once" in captured.err
        assert json.loads(captured.out.splitlines()[-1])["encoder"] == "taesd"  # stdout stays one JSON line per image
        assert (tmp_path / "cache" / "models" / "taesd" / "taesd_encoder.pth").is_file()
        assert main([*cloak[:3], str(tmp_path / "out2"), *cloak[4:]]) == 0
        assert "fetching" not in capsys.readouterr().err  # the second cloak finds it
        monkeypatch.setenv("STYLECLOAK_CACHE", str(tmp_path / "empty-cache"))
        monkeypatch.setenv("STYLECLOAK_OFFLINE", "1")
        assert main(cloak) == 1
        assert "offline" in capsys.readouterr().err
    finally:
        httpd.shutdown()
        httpd.server_close()
