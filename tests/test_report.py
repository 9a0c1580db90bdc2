"""`stylecloak report`: one self-contained HTML page from evaluation and mimicry results."""

from __future__ import annotations

import json
import re

import numpy as np
from PIL import Image

from stylecloak.evaluation.report import build_report


def _png(path, seed, size=(40, 60)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


def _results(folder):
    evaluation = folder / "eval"
    evaluation.mkdir()
    for index, name in enumerate(["wave", "bridge"]):
        original, cloaked = _png(folder / f"{name}.png", index), _png(evaluation / f"{name}.cloaked.png", index + 10)
        view = _png(evaluation / f"{name}.model-view.png", index + 20, size=(40, 128))
        result = {
            "target": "mosaic",
            "encoder": "taef2",
            "width": 60,
            "height": 40,
            "lpips": 0.047,
            "lpips_vgg": 0.2,
            "psnr": 35.1,
            "ssim": 0.93,
            "max_change": 12,
            "target_progress": 0.4 + index / 10,
            "style_transfer_progress": (0.237, 0.113)[index],
            # One pair measured through a surrogate (`evaluate --surrogate`), one not.
            "surrogate_figure": ({"relative_loss": 1.44, "long_side": 128}, None)[index],
            "robustness": {"jpeg85": 0.3, "noise4": 0.35, "vae_roundtrip": None},
            "original": str(original),
            "cloaked": str(cloaked),
            "model_view": view.name,
        }
        (evaluation / f"{name}.evaluation.json").write_text(json.dumps(result))
    (evaluation / "broken.evaluation.json").write_text("{not json")
    mimicry = folder / "mimicry"
    mimicry.mkdir()
    conditions = []
    for name, rate in [("clean", 0.1), ("cloaked", 0.8)]:
        grid = _png(mimicry / f"samples_{name}.png", 5, size=(64, 256))
        conditions.append(
            {
                "condition": name,
                "protection_success_rate": rate,
                "predictions": {"artist": 2},
                "samples": 2,
                "samples_image": str(grid),
            }
            # A report from before the interval was recorded (the clean one here) still renders.
            | ({"rate_interval": [0.66, 0.88]} if name == "cloaked" else {})
        )
    (mimicry / "report.json").write_text(
        json.dumps(
            {
                "artist_images": 9,
                "other_styles": {"renaissance": 6},
                "config": {"steps": 10, "samples": 2},
                "classifier": "gram",
                "classifier_sanity": 1.0,
                "conditions": conditions,
            }
        )
    )


def test_report_is_one_self_contained_page(tmp_path) -> None:
    _results(tmp_path)
    page, inputs = build_report(tmp_path)
    assert len(inputs.evaluations) == 2 and len(inputs.mimicry) == 1
    assert any("broken.evaluation.json" in s for s in inputs.skipped)
    # Every image is embedded: 2 triptychs of 3, the robustness plot, 2 sample grids.
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 2 * 3 + 1 + 2 and all(s.startswith("data:image/") for s in sources)
    assert "http://" not in page and "https://" not in page
    for text in ["wave.cloaked.png", "jpeg85", "protection success rate", "cloaked", "0.80 (0.66-0.88)", "Robustness"]:
        assert text in page
    for text in ["style statistics at 128 px", "<td>0.237</td>"]:  # what a style transfer copies
        assert text in page
    # The transfer pools the works, so the summary gives the lowest beside the mean, not a median.
    assert "style statistics at 128 px: lowest 0.113, mean 0.175" in page
    assert "95% interval" in page
    assert "median 1.44x the originals' (a check of the term, not a protection rate)" in page


def test_report_of_an_empty_folder_says_what_to_run(tmp_path) -> None:
    page, inputs = build_report(tmp_path)
    assert not inputs.evaluations and "stylecloak evaluate" in page and "stylecloak mimic" in page


def test_report_command_writes_the_page(tmp_path, capsys) -> None:
    from stylecloak.cli import main

    _results(tmp_path)
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "out" / "page.html")]) == 0
    page = (tmp_path / "out" / "page.html").read_text()
    assert page.startswith("<!doctype html>") and "2 evaluation(s), 1 mimicry run(s)" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_a_mimicry_report_from_before_the_intervals_renders_without_them(tmp_path) -> None:
    _results(tmp_path)
    path = tmp_path / "mimicry" / "report.json"
    report = json.loads(path.read_text())
    for condition in report["conditions"]:
        condition.pop("rate_interval", None)
    path.write_text(json.dumps(report))
    page, _ = build_report(tmp_path)
    assert "0.80" in page and "95% interval" not in page
