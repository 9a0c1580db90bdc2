"""`stylecloak evaluate`: every field of the report, what the model sees, folders paired by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylecloak.cli import main
from stylecloak.countermeasures import COUNTERMEASURES
from stylecloak.evaluation.evaluate import evaluate_pair, model_view_path, pair_folders, result_path
from stylecloak.imaging import image_to_tensor

from .conftest import load_painting

FIELDS = (
    "original",
    "cloaked",
    "target",
    "encoder",
    "width",
    "height",
    "lpips",
    "lpips_vgg",
    "psnr",
    "ssim",
    "ssim_window_min",
    "max_change",
    "target_progress",
    "robustness",
    "progress_by_scale",
    "decoded_progress_by_scale",
    "aimed_shrinks",
    "style_transfer_progress",
    "surrogate_figure",
    "made_with_surrogate",
    "model_view",
    "visibility_map",
    "seconds",
)


@pytest.fixture(scope="module")
def cloaked_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 96 px painting and its cloak, made by the `stylecloak cloak` CLI (quality fast) as a user would."""
    folder = tmp_path_factory.mktemp("pair")
    original = folder / "wave.png"
    Image.fromarray((load_painting("hokusai_great_wave.png", 96) * 255).round().astype(np.uint8)).save(original)
    assert main(["cloak", str(original), "--quality", "fast", "--target", "mosaic", "--seed", "3"]) == 0
    return original, folder / "wave.cloaked.png"


@pytest.fixture(scope="module")
def lpips_vgg():
    from stylecloak.models.lpips import load_lpips

    return load_lpips("vgg")


def test_evaluate_json_holds_every_field_and_writes_what_the_model_sees(cloaked_pair, tmp_path, capsys) -> None:
    original, cloaked = cloaked_pair
    before = original.read_bytes(), cloaked.read_bytes()
    assert main(["evaluate", str(original), str(cloaked), "--json", "--out", str(tmp_path / "views")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(FIELDS) <= set(result)
    assert result["target"] == "mosaic" and result["encoder"] == "taef2"  # both from the PNG's metadata
    assert (result["width"], result["height"]) == (96, 65)
    assert 0 < result["lpips"] <= 0.05 and result["lpips_vgg"] > 0
    assert 20 < result["psnr"] < 60 and 0 < result["ssim"] < 1
    assert 0.85 <= result["ssim_window_min"] <= result["ssim"]  # the cloak was made at medium: its bound holds
    heatmap = Path(result["visibility_map"])
    assert heatmap == tmp_path / "views" / "wave.visibility.png"
    with Image.open(heatmap) as im:
        assert im.size == (96, 65)
    assert 1 <= result["max_change"] <= 255 and isinstance(result["max_change"], int)
    assert result["target_progress"] > 0
    assert list(result["robustness"]) == [c.name for c in COUNTERMEASURES]
    scales = result["progress_by_scale"]
    assert list(scales) == ["1x", "2x", "4x"]  # the default aim (2, 4) adds no scale
    assert result["aimed_shrinks"] == [2]  # but is named (4x leaves 96 px too small: the cloak skipped it)
    assert scales["1x"] == pytest.approx(result["target_progress"], abs=1e-6)
    assert isinstance(scales["2x"], float) and scales["4x"] is None  # 96 px shrunk 4x is too small to measure
    assert all(isinstance(v, float) and v < result["target_progress"] + 0.05 for v in result["robustness"].values())
    decoded = result["decoded_progress_by_scale"]  # what the decoder draws, at the same sizes
    assert list(decoded) == ["1x", "2x", "4x"] and decoded["4x"] is None
    assert all(isinstance(decoded[k], float) and -1 < decoded[k] < 1 for k in ("1x", "2x"))
    assert isinstance(result["style_transfer_progress"], float) and -1 < result["style_transfer_progress"] < 1
    assert result["surrogate_figure"] is None and result["made_with_surrogate"] is None  # no --surrogate, none used

    view = Path(result["model_view"])
    assert view == tmp_path / "views" / "wave.model-view.png"
    with Image.open(view) as im:
        # a labelled band, then the original's decode, a white gap, the cloaked one's decode
        assert im.size == (2 * 96 + 8, 14 + 65)
        pixels = np.asarray(im.convert("RGB"))
    band, pixels = pixels[:14], pixels[14:]
    assert np.all(pixels[:, 96:104] == 255)
    assert not np.array_equal(pixels[:, :96], pixels[:, 104:])  # the cloak shows in what the model sees
    assert (band[:, :96] < 128).any() and (band[:, 104:] < 128).any()  # both halves are labelled
    assert json.loads((tmp_path / "views" / "wave.evaluation.json").read_text()) == result  # for the HTML report
    assert (original.read_bytes(), cloaked.read_bytes()) == before


def test_evaluate_measures_against_the_target_the_cloak_aimed_at(tmp_path, capsys) -> None:
    # A cloak toward the target drawn at the mimic's size: evaluate must rebuild that target from the file's
    # recorded settings, or its progress would be measured against another image than the cloak's own report.
    original = tmp_path / "wave.png"
    Image.fromarray((load_painting("hokusai_great_wave.png", 160) * 255).round().astype(np.uint8)).save(original)
    args = ["cloak", str(original), "--steps", "3", "--target", "mosaic", "--target-at-mimic-size", "--json"]
    assert main(args) == 0
    made = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert main(["evaluate", str(original), str(tmp_path / "wave.cloaked.png"), "--json", "--no-robustness"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    # 160x108 px: shrunk 4x its short side would fall under 32 px, so 1/2 is the smallest view the cloak works at
    assert result["target"] == "mosaic@1/2"
    assert result["target_progress"] == pytest.approx(made["target_progress"], abs=1e-4)


def test_evaluate_measures_where_the_cloak_aimed_as_well_as_at_half_and_a_quarter(tmp_path, capsys) -> None:
    # A cloak aimed at a mimic's training size shrinks each image by its own factor (128 px to 48: 2.67x): the
    # tables by scale must hold that factor too, or a user sees figures only where the cloak did not aim.
    original = tmp_path / "wave.png"
    Image.fromarray((load_painting("hokusai_great_wave.png", 128) * 255).round().astype(np.uint8)).save(original)
    aim = ["--mimic-sizes", "48", "--mimic-size-of", "long-side"]
    assert main(["cloak", str(original), "--steps", "2", "--target", "mosaic", *aim, "--json"]) == 0
    made = json.loads(capsys.readouterr().out.splitlines()[-1])
    cloaked = str(tmp_path / "wave.cloaked.png")
    assert main(["evaluate", str(original), cloaked, "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    # The cloak's own report gives the same figures where it aimed (half size is not among its aims).
    assert list(made["progress_at_aim"]) == ["2.67x"]
    latent, decoded = made["progress_at_aim"]["2.67x"]
    assert latent == pytest.approx(result["progress_by_scale"]["2.67x"], abs=1e-4)
    assert decoded == pytest.approx(result["decoded_progress_by_scale"]["2.67x"], abs=1e-4)
    assert result["aimed_shrinks"] == [pytest.approx(128 / 48)]
    assert list(result["progress_by_scale"]) == ["1x", "2x", "2.67x", "4x"]
    assert list(result["decoded_progress_by_scale"]) == ["1x", "2x", "2.67x", "4x"]
    assert isinstance(result["progress_by_scale"]["2.67x"], float)
    # People read the same shrink the same way in the cloak's line and in evaluate's text.
    assert (
        main(["cloak", str(original), "--steps", "2", "--target", "mosaic", *aim, "-o", str(tmp_path / "again")]) == 0
    )
    assert f"at its aim 1/2.67 {latent:.2f}" in capsys.readouterr().out
    assert main(["evaluate", str(original), cloaked]) == 0
    assert "1/2.67 size (aimed at)" in capsys.readouterr().out


def test_the_scales_measured_are_the_usual_three_and_each_aimed_shrink_once() -> None:
    from stylecloak.evaluation.evaluate import scales_to_measure
    from stylecloak.metrics import scale_fraction, scale_key

    assert [scale_key(f) for f in (1, 2, 2.5, 4.0, 3.50877)] == ["1x", "2x", "2.5x", "4x", "3.51x"]
    assert [scale_fraction(scale_key(f)) for f in (2, 3.50877)] == ["1/2", "1/3.51"]
    with pytest.raises(ValueError, match="not a key"):
        scale_fraction("3.51")
    assert scales_to_measure() == [1, 2, 4]
    assert scales_to_measure((2, 4)) == [1, 2, 4]  # the default aim adds nothing
    assert scales_to_measure((3.5, 2.0, 1)) == [1, 2, 3.5, 4]


def test_evaluate_text_report_and_no_robustness(cloaked_pair, capsys) -> None:
    original, cloaked = cloaked_pair
    assert main(["evaluate", str(original), str(cloaked), "--no-robustness"]) == 0
    out = capsys.readouterr().out
    assert "target progress" in out and "ssim" in out and "after countermeasures" not in out
    assert "style statistics" not in out  # a figure where a mimic looks: with the robustness figures only
    # The default model-view folder sits beside the cloaked file, never on an input.
    assert (cloaked.parent / "model-view" / "wave.model-view.png").is_file()


def test_folders_paired_with_one_unpaired_and_one_corrupt(cloaked_pair, tmp_path, capsys) -> None:
    original, cloaked = cloaked_pair
    originals, cloaks = tmp_path / "originals", tmp_path / "cloaks"
    originals.mkdir(), cloaks.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(original, originals / f"{name}.png")
    shutil.copy(cloaked, cloaks / "a.cloaked.png")
    (cloaks / "c.cloaked.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    code = main(["evaluate", str(originals), str(cloaks), "--json", "--no-robustness"])
    captured = capsys.readouterr()
    assert code == 1  # one pair failed; the batch still went on
    reports = [json.loads(line) for line in captured.out.splitlines()]
    assert [Path(r["cloaked"]).name for r in reports] == ["a.cloaked.png"]
    assert reports[0]["robustness"] == {}
    err = captured.err.splitlines()
    assert len([line for line in err if "b.png" in line and line.startswith("stylecloak: warning:")]) == 1
    assert len([line for line in err if "c.cloaked.png" in line and line.startswith("stylecloak: error:")]) == 1
    assert "Traceback" not in captured.err
    assert (cloaks / "model-view" / "a.model-view.png").is_file()


def test_pairing_rules(tmp_path) -> None:
    both = tmp_path / "both"
    both.mkdir()
    for name in ("x.png", "x.cloaked.png", "y.jpg", "z.png", "z.cloaked.webp", "z.model-view.png", "notes.txt"):
        (both / name).write_bytes(b"")
    pairing = pair_folders(both, both)  # one folder, as `stylecloak cloak` leaves it
    assert [(n, o.name, c.name) for n, o, c in pairing.pairs] == [
        ("x", "x.png", "x.cloaked.png"),
        ("z", "z.png", "z.cloaked.webp"),
    ]
    assert len(pairing.unpaired) == 1 and "y.jpg" in pairing.unpaired[0]

    same_names = tmp_path / "same_names"
    same_names.mkdir()
    for name in ("x.png", "y.png", "y.jpg"):
        (same_names / name).write_bytes(b"")
    pairing = pair_folders(both, same_names)  # cloaks named as the originals, in another folder
    assert [n for n, _, _ in pairing.pairs] == ["x"]
    assert any("y.jpg, y.png" in line and "share the name" in line for line in pairing.unpaired)


def test_model_view_never_overwrites_an_input(tmp_path) -> None:
    source = tmp_path / "wave.model-view.png"
    source.write_bytes(b"")
    with pytest.raises(ValueError, match="overwrite"):
        model_view_path(tmp_path, "wave", [source])
    with pytest.raises(ValueError, match="overwrite"):
        result_path(tmp_path, "x", [tmp_path / "x.evaluation.json"])
    assert model_view_path(tmp_path / "out", "wave", [source]) == tmp_path / "out" / "wave.model-view.png"


def test_identical_images_measure_zero(encoder, lpips_alex, lpips_vgg) -> None:
    image = image_to_tensor(load_painting("hokusai_great_wave.png", 64))
    target = torch.flip(image, dims=[-1])
    result = evaluate_pair(image, image.clone(), target, encoder, lpips_alex, lpips_vgg, robustness=False)
    assert result.psnr is None and result.ssim == pytest.approx(1.0) and result.max_change == 0
    assert result.lpips == pytest.approx(0, abs=1e-6) and result.lpips_vgg == pytest.approx(0, abs=1e-6)
    assert result.target_progress == pytest.approx(0, abs=1e-6)
    assert json.loads(json.dumps(result.to_dict()))["psnr"] is None  # valid JSON, no Infinity


def test_bad_inputs_are_one_line(cloaked_pair, tmp_path, capsys) -> None:
    original, cloaked = cloaked_pair
    assert main(["evaluate", str(original), str(tmp_path)]) == 2  # a file and a folder
    assert capsys.readouterr().err.count("\n") == 1
    plain = tmp_path / "plain.png"
    Image.open(cloaked).save(plain)  # pixels without the recorded settings
    assert main(["evaluate", str(original), str(plain), "--no-robustness"]) == 1
    err = capsys.readouterr().err
    assert "pass --target NAME" in err and "Traceback" not in err
    assert main(["evaluate", str(original), str(cloaked), "--target", "nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_help_teaches(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    for words in ("target_progress", "robustness", "ssim", "max_change", "model-view", "--no-robustness", "paired"):
        assert words in text
