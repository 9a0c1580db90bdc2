"""The command line: the `cloak` contract (README, docs/architecture.md), bad inputs in a batch, help that teaches."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylecloak.cli import main

from .conftest import load_painting

FAST = ["--steps", "2"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _painting_uint8(long_side: int = 96) -> np.ndarray:
    return (load_painting("hokusai_great_wave.png", long_side) * 255).round().astype(np.uint8)


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header for a huge greyscale image, then an empty image stream."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture()
def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    """One file for every kind of bad input the issue lists, each beside good images in the same folder."""
    folder = tmp_path / "batch"
    folder.mkdir()
    rgb = _painting_uint8()
    files: dict[str, Path] = {}

    def put(name: str) -> Path:
        files[name] = folder / name
        return files[name]

    Image.fromarray(rgb).save(put("a_good.png"))
    put("corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    put("not_an_image.jpg").write_text("this is a text file with an image extension\n")
    put("empty.png").write_bytes(b"")
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(put("animated.gif"), save_all=True, append_images=frames[1:], duration=100)
    Image.fromarray(rgb).convert("CMYK").save(put("cmyk.jpg"), quality=95)
    grey16 = (np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(put("grey16.png"))
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(put("palette.png"))
    Image.fromarray(rgb).convert("L").save(put("grey.png"))
    rgba = np.dstack([rgb, np.linspace(0, 255, rgb.shape[1], dtype=np.uint8)[None].repeat(rgb.shape[0], 0)])
    Image.fromarray(rgba, mode="RGBA").save(put("alpha.png"))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(put("rotated.jpg"), exif=exif.tobytes(), quality=95)
    # A decompression bomb: a tiny file whose header claims 60000 x 60000 pixels.
    put("bomb.png").write_bytes(_png_header_only(60000, 60000))
    return files


def test_cloak_batch_with_every_bad_input(bad_inputs, tmp_path, capsys) -> None:
    before = {name: _digest(path) for name, path in bad_inputs.items()}
    out = tmp_path / "out"
    code = main(["cloak", str(bad_inputs["a_good.png"].parent), "-o", str(out), "--json", *FAST])
    captured = capsys.readouterr()
    assert code == 1  # something failed, and the exit code says so

    reports = {Path(r["input"]).name: r for r in map(json.loads, captured.out.splitlines())}
    handled = {"a_good.png", "cmyk.jpg", "grey16.png", "palette.png", "grey.png", "alpha.png", "rotated.jpg"}
    refused = {"corrupt.png", "not_an_image.jpg", "empty.png", "animated.gif", "bomb.png"}
    assert set(reports) == handled
    for name in refused:
        lines = [line for line in captured.err.splitlines() if name in line]
        assert len(lines) == 1, (name, captured.err)
        assert lines[0].startswith("stylecloak: error:")
    assert "Traceback" not in captured.err
    for report in reports.values():
        assert report["lpips"] <= report["budget"]
        assert Path(report["output"]).parent == out
    # Inputs are never modified, and no partial files are left behind.
    assert {name: _digest(path) for name, path in bad_inputs.items()} == before
    assert not [p for p in out.iterdir() if not p.name.endswith(".cloaked.png") and p.name != ".stylecloak.json"]

    with Image.open(out / "alpha.cloaked.png") as im:
        assert im.mode == "RGBA"
        source_alpha = np.asarray(Image.open(bad_inputs["alpha.png"]))[..., 3]
        assert np.array_equal(np.asarray(im)[..., 3], source_alpha)
    with Image.open(out / "rotated.cloaked.png") as im, Image.open(bad_inputs["rotated.jpg"]) as src:
        assert im.size == (src.height, src.width)  # upright, as a viewer shows the input
        assert im.getexif().get(0x0112, 1) == 1


def test_json_report_fields_and_png_metadata(small_painting_file, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["cloak", str(small_painting_file), "-o", str(out), "--json", "--seed", "7", *FAST]) == 0
    report = json.loads(capsys.readouterr().out.strip())
    for field in (
        "input",
        "output",
        "target",
        "encoder",
        "budget",
        "lpips",
        "target_progress",
        "seconds",
        "ssim",
        "ssim_window_min",
        "psnr",
        "max_change",
        "limited_by",
    ):
        assert field in report
    assert report["encoder"] == "taef2" and report["budget"] == 0.05 and report["lpips"] <= 0.05
    assert report["ssim"] >= 0.93 and report["ssim_window_min"] >= 0.85 and report["psnr"] >= 30
    assert 1 <= report["max_change"] <= 12
    assert report["target_progress"] > 0
    with Image.open(report["output"]) as im:
        assert im.format == "PNG" and im.size == Image.open(small_painting_file).size
        assert im.info["Software"].startswith("stylecloak ")
        recorded = json.loads(im.info["stylecloak"])
        assert recorded["settings"]["seed"] == 7 and recorded["settings"]["budget"] == 0.05
        assert recorded["settings"]["ssim_window_min"] == 0.85
        assert recorded["visibility"] == {
            k: report[k] for k in ("lpips", "ssim", "ssim_window_min", "psnr", "max_change")
        }


def test_icc_profile_is_kept(tmp_path, capsys) -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "with_icc.png"
    Image.fromarray(_painting_uint8()).save(path, icc_profile=profile)
    assert main(["cloak", str(path), "-o", str(tmp_path / "out"), *FAST]) == 0
    with Image.open(tmp_path / "out" / "with_icc.cloaked.png") as im:
        assert im.info.get("icc_profile") == profile


@pytest.mark.parametrize("fmt", ["jpg", "webp"])
def test_other_output_formats_on_request(small_painting_file, tmp_path, fmt, capsys) -> None:
    assert main(["cloak", str(small_painting_file), "-o", str(tmp_path), "--format", fmt, "--json", *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output"].endswith(f".cloaked.{fmt}")
    with Image.open(report["output"]) as im:
        assert im.format == {"jpg": "JPEG", "webp": "WEBP"}[fmt]


def test_default_output_goes_beside_the_input_and_never_overwrites(small_painting_file, capsys) -> None:
    before = _digest(small_painting_file)
    assert main(["cloak", str(small_painting_file), *FAST]) == 0
    assert (small_painting_file.parent / "wave.cloaked.png").is_file()
    assert _digest(small_painting_file) == before
    # Cloaking a folder twice does not cloak its own outputs again.
    assert main(["cloak", str(small_painting_file.parent), "--json", *FAST]) == 0
    names = [
        Path(json.loads(line)["input"]).name for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    assert names == ["wave.png"]


def test_same_seed_same_bytes(small_painting_file, tmp_path) -> None:
    for run in ("a", "b"):
        assert main(["cloak", str(small_painting_file), "-o", str(tmp_path / run), "--seed", "5", *FAST]) == 0
    assert _digest(tmp_path / "a" / "wave.cloaked.png") == _digest(tmp_path / "b" / "wave.cloaked.png")


def test_missing_file_is_one_line(tmp_path, capsys) -> None:
    assert main(["cloak", str(tmp_path / "nope.png"), *FAST]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("stylecloak: error:") and "nope.png" in err[0]


def test_unknown_target_and_encoder_are_usage_errors(small_painting_file, capsys) -> None:
    assert main(["cloak", str(small_painting_file), "--target", "nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err
    assert main(["cloak", str(small_painting_file), "--encoder", "nonsense"]) == 2
    assert "known encoders" in capsys.readouterr().err


def test_help_teaches(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["cloak", "--help"])
    text = capsys.readouterr().out
    for words in ("examples:", "--intensity", "0.05", "never modified", "--seed"):
        assert words in text


def test_console_script_runs_without_network(small_painting_file, tmp_path) -> None:
    """The installed `stylecloak` entry point, as a user runs it (no network is touched anywhere)."""
    script = Path(sys.executable).parent / "stylecloak"
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    result = subprocess.run(
        [str(script), "cloak", str(small_painting_file), "-o", str(tmp_path / "o"), "--json", *FAST],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["lpips"] <= 0.05


def test_evaluate_reports_metrics(small_painting_file, tmp_path, capsys) -> None:
    assert main(["cloak", str(small_painting_file), "-o", str(tmp_path), "--json", *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(small_painting_file), report["output"], "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["lpips"] <= 0.05 and result["target_progress"] > 0 and result["max_change"] >= 1
    # The cloak's own report says where a mimic looks, as evaluate measures it on the saved file.
    assert report["target_progress_half"] == pytest.approx(result["progress_by_scale"]["2x"], abs=1e-4)
    assert report["decoded_progress_half"] == pytest.approx(result["decoded_progress_by_scale"]["2x"], abs=1e-4)
    assert report["progress_at_aim"] == {}  # the default aim includes half size: nothing more to report


def test_python_api(capsys) -> None:
    import stylecloak

    rgb = _painting_uint8(80)
    cloaked, report = stylecloak.cloak(rgb, intensity="low", quality="fast", target="ink-hatching", steps=2)
    assert cloaked.shape == rgb.shape and cloaked.dtype == np.uint8
    assert report.budget == 0.03 and report.lpips <= 0.03 and report.target == "ink-hatching"
    assert not np.array_equal(cloaked, rgb)
