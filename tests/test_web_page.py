"""The web page, driven in headless Chromium as an artist would use it: pick two shared paintings, cloak them,
look at the before/after view and what the model sees, download the ZIP, and check the images in it.

Chromium comes from Debian (scripts/install-browser.sh, run by the install command); Playwright drives it through
``executable_path`` and downloads no browser of its own. A screenshot of the finished page is left in the test's
temporary folder (its path is printed)."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from stylecloak.imaging import image_to_tensor, load_image
from stylecloak.metrics import lpips_distance, target_progress
from stylecloak.optimize import quantize_8bit
from stylecloak.targets import get_target

from .conftest import painting_path
from .webserver import running_server

PAINTINGS = ["arcimboldo_librarian.png", "hokusai_oiran_and_kamuro.png"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed: scripts/install-browser.sh installs Debian's chromium (as root)")


def test_an_artist_cloaks_two_paintings_in_the_page(tmp_path: Path, encoder, lpips_alex) -> None:
    pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'"
    )
    chromium = _chromium()
    paths = [painting_path(name) for name in PAINTINGS]
    with running_server(tmp_path / "data", tmp_path / "server.log") as server, sync_api.sync_playwright() as playwright:
        # Chromium's sandbox cannot start as root (as CI runs); the page is our own, on 127.0.0.1.
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox"] if os.geteuid() == 0 else []
        )
        page = browser.new_page(viewport={"width": 1366, "height": 768}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.wait_for_selector("input[name=quality][value=fast]")

        page.set_input_files("#file-input", [str(p) for p in paths])
        page.wait_for_function("document.querySelectorAll('#file-list li').length === 2")
        assert page.inner_text("#start") == "Cloak 2 images"
        page.check("input[name=quality][value=fast]")
        page.wait_for_function("/Estimated time: about/.test(document.querySelector('#estimate').textContent)")
        page.click("#start")

        page.wait_for_selector(".job[data-state=done]", timeout=240_000)
        finished = page.locator(".item[data-state=done]")
        assert finished.count() == 2
        page.wait_for_function(
            "[...document.querySelectorAll('.compare img')].every(i => i.complete && i.naturalWidth > 0)"
        )

        # The before/after slider moves with the keyboard, and the zoom changes the displayed size.
        slider = finished.first.locator("input[type=range]")
        slider.focus()
        for _ in range(10):
            page.keyboard.press("ArrowLeft")
        assert slider.input_value() == "40"
        assert "60%" in finished.first.locator("img.after").get_attribute("style")
        finished.first.locator("select").select_option("2")
        assert finished.first.locator("img.after").evaluate("i => i.getBoundingClientRect().width") == pytest.approx(
            2 * 304, abs=1
        )
        finished.first.locator("select").select_option("fit")

        # What the model sees, for the original and the cloaked image.
        finished.first.get_by_role("button", name="What an AI model sees").click()
        seen = finished.first.locator(".seen img")
        assert seen.count() == 2
        page.wait_for_function(
            "[...document.querySelectorAll('.seen:not([hidden]) img')].every(i => i.complete && i.naturalWidth > 0)"
        )

        screenshot = tmp_path / "stylecloak-page.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"screenshot of the finished page: {screenshot}")

        with page.expect_download() as download_info:
            page.click("a.zip")
        archive_path = tmp_path / "cloaked.zip"
        download_info.value.save_as(str(archive_path))
        assert not errors, errors
        browser.close()

    assert screenshot.stat().st_size > 10_000
    archive = zipfile.ZipFile(archive_path)
    report = json.loads(archive.read("stylecloak-report.json"))
    assert sorted(archive.namelist()) == sorted([p.stem + ".cloaked.png" for p in paths] + ["stylecloak-report.json"])
    target = get_target(report["target"])
    for path, entry in zip(paths, report["images"]):
        original = image_to_tensor(load_image(path).rgb)
        cloaked = image_to_tensor(load_image(_saved(archive, entry["file"], tmp_path)).rgb)
        assert cloaked.shape == original.shape
        assert not torch.equal(cloaked, original)
        # Measured here, independently of the server: the budget held and the encoder moved toward the target.
        assert lpips_distance(lpips_alex, original, cloaked) <= entry["budget"]
        assert target_progress(encoder, original, cloaked, quantize_8bit(target.render(original, seed=0))) > 0


def _saved(archive: zipfile.ZipFile, name: str, folder: Path) -> Path:
    path = folder / "unzipped" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(archive.read(name))
    return path
