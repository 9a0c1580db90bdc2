"""What a new user meets first: write targets checked before any work, the pin kept out of the input folder, the
default encoder never fetched unasked, honest words, and closing lines that make sense."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylecloak.cli import main
from stylecloak.imaging import DEFAULT_MAX_PIXELS
from stylecloak.outputs import OutputError, check_writable_folder, pin_folder

from .conftest import ROOT, load_painting

FAST = ["--steps", "1", "--target", "mosaic"]


@pytest.fixture()
def portfolio(tmp_path: Path) -> Path:
    folder = tmp_path / "portfolio"
    folder.mkdir()
    for name in ("hokusai_great_wave.png", "leonardo_mona_lisa.png"):
        Image.fromarray((load_painting(name, 64) * 255).round().astype(np.uint8)).save(folder / name)
    return folder


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------- 1. write targets, early


def test_check_writable_folder_names_the_path_and_reason(tmp_path: Path) -> None:
    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"x")
    with pytest.raises(OutputError, match=r"file.png: is a file, not a folder"):
        check_writable_folder(a_file)
    with pytest.raises(OutputError, match=r"cannot create the output folder \(Not a directory\)"):
        check_writable_folder(a_file / "out")
    assert check_writable_folder(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert not list((tmp_path / "new" / "deep").iterdir())  # the probe file is gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the path checks above cover it")
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="cannot write in the output folder"):
            check_writable_folder(folder)
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_unwritable_output_folder_fails_in_one_line_before_any_work(
    portfolio: Path, tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "taken.png"
    a_file.write_bytes(b"x")
    out = a_file if where == "a file" else a_file / "out"
    started = time.perf_counter()
    # The default --target auto too: its pin is the first write, and it used to fail with a traceback.
    assert main(["cloak", str(portfolio), "-o", str(out), "--steps", "1"]) == 1
    assert time.perf_counter() - started < 10  # no model loaded, nothing optimised
    err = _lines(capsys.readouterr().err)
    assert str(out) in err[0] and ("is a file" in err[0] or "cannot create" in err[0])
    assert not any("Traceback" in line or "Errno" in line for line in err)


def test_the_pin_never_goes_into_the_input_folder(
    portfolio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STYLECLOAK_CACHE", str(tmp_path / "cache"))
    assert main(["cloak", str(portfolio), "--steps", "1"]) == 0  # outputs beside the inputs, as asked
    assert not (portfolio / ".stylecloak.json").exists()
    pin = pin_folder(sorted(portfolio.glob("*.png")), None) / ".stylecloak.json"
    assert pin.is_file() and str(tmp_path / "cache") in str(pin)
    assert "pinned in " + str(pin) in capsys.readouterr().err
    # A later run of the same folder finds the pin.
    assert main(["cloak", str(portfolio / "hokusai_great_wave.png"), "-o", str(tmp_path / "o2"), "--steps", "1"]) == 0
    assert main(["cloak", str(portfolio), "--steps", "1"]) == 0
    assert f"(pinned in {pin})" in capsys.readouterr().err


def test_an_unwritable_pin_folder_is_a_warning_and_the_cloak_goes_on(
    portfolio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_bytes(b"x")
    monkeypatch.setenv("STYLECLOAK_CACHE", str(blocker))
    assert main(["cloak", str(portfolio / "hokusai_great_wave.png"), "--steps", "1"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "not pinned" in err and "Traceback" not in err
    assert (portfolio / "hokusai_great_wave.cloaked.png").is_file()


# ------------------------------------------------------------------------- 2. the default encoder, unasked


def test_a_missing_default_encoder_says_how_to_get_it_and_downloads_nothing(
    portfolio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STYLECLOAK_MODELS", str(tmp_path / "no-models"))
    monkeypatch.setenv("STYLECLOAK_CACHE", str(tmp_path / "cache"))
    started = time.perf_counter()
    assert main(["cloak", str(portfolio), "-o", str(tmp_path / "out"), *FAST]) == 2
    assert time.perf_counter() - started < 10  # no network wait
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "stylecloak models fetch taef2" in err[0] and "STYLECLOAK_MODELS" in err[0]
    assert "fetching" not in err[0]
    assert not (tmp_path / "cache" / "models").exists()


# ------------------------------------------------------------------------------------------ 3. honest words


def test_no_user_facing_text_promises_protection() -> None:
    from stylecloak.cli import build_parser
    from stylecloak.settings import INTENSITY_PRESETS, QUALITY_PRESETS

    parser = build_parser()
    texts = [
        parser.format_help(),
        *(
            action.choices["cloak"].format_help()
            for action in parser._subparsers._actions
            if getattr(action, "choices", None) and "cloak" in action.choices
        ),
    ]
    texts += [p.description for p in INTENSITY_PRESETS.values()] + [p.description for p in QUALITY_PRESETS.values()]
    texts.append((ROOT / "stylecloak" / "web" / "static" / "index.html").read_text())
    for text in texts:
        lowered = text.lower()
        for claim in (
            "solid protection",
            "strongest protection",
            "protects more",
            "weaker protection",
            "protect your art",
        ):
            assert claim not in lowered, (claim, text[:200])
    assert all(p.description for p in INTENSITY_PRESETS.values())


# ---------------------------------------------------------------------------------- 6. limits, documented


def test_readme_states_both_pixel_limits() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"{DEFAULT_MAX_PIXELS // 1_000_000} megapixels" in readme  # the command line's limit
    assert "--max-megapixels" in readme and "default 40" in readme  # the web app's


# -------------------------------------------------------------------------------- 8. the closing line


def test_a_single_failed_image_does_not_speak_of_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert main(["cloak", str(broken), "-o", str(tmp_path / "out"), *FAST]) == 1
    err = capsys.readouterr().err
    assert "the others" not in err and "the image failed; nothing was written" in err


# ------------------------------------------------------------------------------------------ 9. the README


def test_readme_first_screen_says_what_it_is_what_is_shown_and_how_to_run_it() -> None:
    readme = (ROOT / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:40])
    for needed in (
        "style",
        "Glaze",
        "Shown",
        "Not shown",
        "mimicry",
        "pip install",
        "stylecloak cloak",
        "models fetch taef2",
    ):
        assert needed in first_screen, needed
    assert "Python 3.11" in readme and "pip install -e ." in readme and "CPU build" in readme
    assert "minutes" in readme.split("## Install", 1)[1].split("## Cloak", 1)[0]  # how long the tests take


def test_no_development_log_language_in_user_facing_text() -> None:
    import re

    texts = {path.name: path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    for name, text in texts.items():
        for pattern in (
            r"\bissue \d",
            r"\(issue",
            r"this CPU",
            r"was lent",
            r"\bthis session\b",
            r"TESTS_TIME",
            r"VISIBILITY_(SUMMARY|RESULTS)",
        ):
            assert not re.search(pattern, text), (name, pattern)
