"""The batch path (stylecloak.batch): listing, the manifest, resuming, the worker without Ray, and a few runs on a
local Ray with 2 CPUs (skipped with the reason when the cluster extra is missing). Images are 128 px and the cloak
runs 2 steps, so that a run takes seconds of cloaking; Ray's own start is most of each run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylecloak.batch.manifest import MANIFEST_NAME, ManifestRow, ManifestWriter, read_manifest
from stylecloak.batch.ray_run import BatchRequest, commit, plan_batch
from stylecloak.batch.sources import BatchInput, list_inputs
from stylecloak.batch.worker import BatchJob, BatchWorker
from stylecloak.cli import main
from stylecloak.models.weights import sha256_file
from stylecloak.settings import CloakSettings
from stylecloak.targets.resolve import TargetRequest

from .conftest import ROOT, load_painting

PAINTINGS = ("hokusai_great_wave.png", "durer_lion.png", "hokusai_poppies.png", "cassatt_summertime.png")
CLOAK_ARGS = ["--steps", "2", "--seed", "3"]


def _settings(target: str = "woodcut") -> CloakSettings:
    return CloakSettings.from_presets("medium", "default", steps=2, seed=3, target=target)


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    """4 shared paintings at 128 px (two in a sub-folder) and a corrupt file."""
    src = tmp_path / "src"
    (src / "more").mkdir(parents=True)
    for index, name in enumerate(PAINTINGS):
        folder = src / "more" if index >= 2 else src
        Image.fromarray((load_painting(name, 128) * 255).round().astype(np.uint8)).save(folder / name)
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"cut short")
    return src


def _reference_cloaks(src: Path, out: Path, target: str) -> dict[str, bytes]:
    """What `stylecloak cloak` writes for each painting, at the batch workers' one CPU thread (the float sums, and
    so the last bits, depend on the thread count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        files = [src / name for name in ("durer_lion.png", "hokusai_great_wave.png")]
        files += [src / "more" / name for name in ("cassatt_summertime.png", "hokusai_poppies.png")]
        assert main(["cloak", *map(str, files), "-o", str(out), "--target", target, *CLOAK_ARGS]) == 0
    finally:
        torch.set_num_threads(threads)
    return {p.name: p.read_bytes() for p in out.glob("*.cloaked.png")}


# ------------------------------------------------------------------------------------------- without Ray


def test_inputs_are_listed_recursively_without_our_outputs_hidden_files_or_the_destination(archive: Path) -> None:
    (archive / "old.cloaked.png").write_bytes(b"an earlier output")
    (archive / ".hidden.png").write_bytes(b"x")
    (archive / "notes.txt").write_text("not an image")
    destination = archive / "protected"
    (destination / "sub").mkdir(parents=True)
    (destination / "sub" / "wave.png").write_bytes(b"inside the destination")
    inputs = list_inputs(str(archive), destination)
    assert [item.relative for item in inputs] == [
        "corrupt.png",
        "durer_lion.png",
        "hokusai_great_wave.png",
        "more/cassatt_summertime.png",
        "more/hokusai_poppies.png",
    ]
    assert inputs[3].output_path(destination) == destination / "more" / "cassatt_summertime.cloaked.png"
    globbed = list_inputs(str(archive / "**" / "*.png"), destination)
    assert {item.relative for item in globbed} == {item.relative for item in inputs}
    with pytest.raises(ValueError, match="no such file or folder"):
        list_inputs(str(archive / "missing"))


def test_the_manifest_keeps_the_last_row_and_ignores_a_line_cut_short(tmp_path: Path) -> None:
    path = tmp_path / MANIFEST_NAME
    with ManifestWriter(path) as writer:
        writer.append(ManifestRow("a.png", "11", None, error="corrupt"))
        writer.append(ManifestRow("a.png", "11", "out/a.cloaked.png"))
    with open(path, "a") as stream:
        stream.write('{"input": "b.png", "sha2')  # a crash mid-line
    with ManifestWriter(path) as writer:  # the next run starts on a fresh line
        writer.append(ManifestRow("c.png", "33", "out/c.cloaked.png"))
    rows = read_manifest(path)
    assert set(rows) == {"a.png", "c.png"} and rows["a.png"].ok and rows["c.png"].ok


def test_the_worker_writes_what_cloak_writes_and_reports_a_corrupt_file(archive: Path, tmp_path: Path) -> None:
    reference = _reference_cloaks(archive, tmp_path / "ref", "woodcut")
    job = BatchJob(str(archive), str(tmp_path / "dst"), _settings(), threads=1)
    threads = torch.get_num_threads()
    try:
        worker = BatchWorker(job)
        item = BatchInput(str(archive / "durer_lion.png"), "durer_lion.png")
        row = worker.cloak_one(item)
        bad = worker.cloak_one(BatchInput(str(archive / "corrupt.png"), "corrupt.png"))
    finally:
        torch.set_num_threads(threads)
    assert row.ok and row.sha256 == sha256_file(archive / "durer_lion.png")
    assert job.staging_path(item).read_bytes() == reference["durer_lion.cloaked.png"]
    assert row.report["lpips"] <= 0.05 and row.report["output"] == row.output and row.settings["target"] == "woodcut"
    assert not bad.ok and bad.output is None and "corrupt" in bad.error and "\n" not in bad.error


def test_commit_writes_the_row_before_the_output_and_a_rerun_skips_only_unchanged_inputs(
    archive: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "dst"
    job = BatchJob(str(archive), str(destination), _settings())
    items = list_inputs(str(archive), destination)
    wave = next(item for item in items if item.relative == "hokusai_great_wave.png")
    staging = job.staging_path(wave)
    staging.parent.mkdir(parents=True)
    staging.write_bytes(b"staged output")
    output = wave.output_path(destination)
    row = ManifestRow(wave.path, sha256_file(wave.path), str(output))
    with ManifestWriter(destination / MANIFEST_NAME) as manifest:
        commit(row, job, wave, manifest)
    assert output.read_bytes() == b"staged output" and not staging.exists()
    todo, done = plan_batch(items, str(destination))
    assert done == [wave] and wave not in todo and len(todo) == len(items) - 1
    # An input changed since: its sha256 no longer matches, so it is cloaked again.
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(wave.path)
    todo, done = plan_batch(items, str(destination))
    assert done == [] and wave in todo


# ---------------------------------------------------------------------------------------------- on Ray


@pytest.fixture()
def ray_available() -> None:
    pytest.importorskip("ray", reason="the batch path needs the cluster extra: pip install -e '.[cluster]'")


def _rows(destination: Path) -> list[dict]:
    return [json.loads(line) for line in (destination / MANIFEST_NAME).read_text().splitlines() if line.strip()]


def test_a_batch_on_ray_writes_what_cloak_writes_and_resumes(
    ray_available, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    destination = archive / "protected"  # inside the source: its outputs must never become inputs
    code = main(["batch", str(archive), str(destination), "--actors", "2", *CLOAK_ARGS])
    captured = capsys.readouterr()
    assert code == 1, captured.err  # one input failed
    assert "4 cloaked, 0 already done, 1 failed, of 5" in captured.out
    rows = _rows(destination)
    assert len(rows) == 5 and sum(row["error"] is not None for row in rows) == 1
    (target,) = {row["settings"]["target"] for row in rows}  # auto: one choice for the whole batch, pinned
    assert (destination / ".stylecloak.json").is_file() and "chosen for 4 image(s)" in captured.err
    reference = _reference_cloaks(archive, tmp_path / "ref", target)
    outputs = sorted(destination.rglob("*.cloaked.png"))
    assert len(outputs) == 4 and (destination / "more" / "hokusai_poppies.cloaked.png") in outputs
    assert {p.name: p.read_bytes() for p in outputs} == reference
    stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in outputs}

    # Again: the 4 done are skipped (and not rewritten), the corrupt file is tried again and fails again.
    assert main(["batch", str(archive), str(destination), "--actors", "1", *CLOAK_ARGS]) == 1
    assert "0 cloaked, 4 already done, 1 failed, of 5" in capsys.readouterr().out
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in outputs} == stamps
    assert sorted(destination.rglob("*.cloaked.png")) == outputs  # nothing cloaked twice


def test_a_batch_killed_after_its_first_output_finishes_on_a_rerun_with_each_output_written_once(
    ray_available, archive: Path, tmp_path: Path
) -> None:
    (archive / "corrupt.png").unlink()
    destination = tmp_path / "dst"
    command = [
        sys.executable,
        "-m",
        "stylecloak.cli",
        "batch",
        str(archive),
        str(destination),
        "--actors",
        "1",
        "--target",
        "woodcut",
        *CLOAK_ARGS,
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    try:
        while not list(destination.rglob("*.cloaked.png")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the driver and the Ray it started
        process.wait()
    first = list(destination.rglob("*.cloaked.png"))
    assert len(first) >= 1, "the batch wrote nothing before it was killed"
    stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in first}
    assert subprocess.run(command, cwd=ROOT, capture_output=True, timeout=600).returncode == 0
    outputs = sorted(destination.rglob("*.cloaked.png"))
    assert len(outputs) == 4
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in first} == stamps
    committed = [row["input"] for row in _rows(destination) if row["error"] is None]
    assert sorted(committed) == sorted(set(committed)) and len(committed) == 4  # each output committed once
    assert not any((destination / ".stylecloak-batch" / "staging").iterdir())


def test_a_request_default_is_auto_and_png() -> None:
    request = BatchRequest("src", "dst")
    assert request.target == TargetRequest() and request.fmt == "png" and request.max_retries == 2
