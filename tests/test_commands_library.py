"""What the commands do, tested in the library where it now lives (the CLI only parses, calls and prints):
the option tables, the settings they make, one cloak run over files, pairing for evaluate, the serve checks,
the model table's texts and the closing lines of a batch."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from stylecloak import options
from stylecloak.cli import build_parser
from stylecloak.cloak_files import CloakEvents, CloakFilesRequest, CloakRunError, cloak_files, settings_for_options
from stylecloak.errors import failure_summary
from stylecloak.evaluation.pairs import plan_pairs
from stylecloak.imaging import expand_inputs
from stylecloak.outputs import writable_inputs
from stylecloak.settings import CloakSettings
from stylecloak.targets.resolve import TargetRequest
from stylecloak.web.launch import LaunchError, ServeOptions, is_loopback, plan_serving

PAINTINGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"


def _cloak_args(*argv: str) -> dict:
    return vars(build_parser().parse_args(["cloak", "x.png", *argv]))


def test_every_command_and_action_builds_and_documents_its_options() -> None:
    parser = build_parser()
    for command in options.COMMANDS:
        for action in command.actions or (None,):
            argv = [command.name] + ([action.name] if action else [])
            with pytest.raises(SystemExit) as info:
                parser.parse_args([*argv, "--help"])
            assert info.value.code == 0
        for option in command.options + tuple(o for a in command.actions for o in a.options):
            if option.flags[0].startswith("--") and option.flags[0] not in ("--seed", "--title"):
                assert option.settings.get("help"), f"{command.name} {option.flags[0]} has no help"


def test_the_cloak_options_defaults_are_the_librarys() -> None:
    args = _cloak_args()
    settings = settings_for_options(args)
    assert settings == CloakSettings.from_presets("medium", "default", target=CloakSettings().target)
    assert (args["intensity"], args["quality"], args["encoder"], args["seed"]) == ("medium", "default", "taef2", 0)


def test_options_become_settings_and_a_target_request() -> None:
    args = _cloak_args("--intensity", "high", "--steps", "3", "--target", "woodcut", "--mimic-downscales", "2,4")
    settings = settings_for_options(args)
    assert (settings.intensity, settings.steps, settings.target, settings.mimic_downscales) == (
        "high",
        3,
        "woodcut",
        (2, 4),
    )
    assert settings.budget == CloakSettings.from_presets("high").budget
    assert settings.mimic_jitter is False
    assert settings_for_options(_cloak_args("--mimic-downscales", "2", "--mimic-jitter")).mimic_jitter is True
    # the default factors (2, 4) are there to draw around; 1 (the full size alone) is not
    assert settings_for_options(_cloak_args("--mimic-jitter")).mimic_jitter is True
    assert settings_for_options(_cloak_args()).mimic_downscales == (2, 4)
    assert settings_for_options(_cloak_args("--mimic-downscales", "1")).mimic_downscales == (1,)
    with pytest.raises(ValueError, match=r"needs a mimic_downscales \(--mimic-downscales\) factor above 1"):
        settings_for_options(_cloak_args("--mimic-downscales", "1", "--mimic-jitter"))
    # auto and sd: prompts are resolved per run: they never become the settings' catalogue target
    assert settings_for_options(_cloak_args("--target", "sd:a red barn")).target == CloakSettings().target
    request = TargetRequest.from_options(_cloak_args("--target-images", "refs", "--descriptor", "latent"))
    assert (request.target, request.reference_images, request.descriptor) == ("auto", "refs", "latent")
    with pytest.raises(ValueError):
        settings_for_options(_cloak_args("--budget", "-1"))


def test_settings_refuse_jitter_without_a_shrunk_factor_for_every_caller() -> None:
    # The API and the web app build CloakSettings directly: the check lives there, not in the command line.
    with pytest.raises(ValueError, match="mimic_jitter"):
        CloakSettings(mimic_downscales=(1,), mimic_jitter=True)
    with pytest.raises(ValueError, match="mimic_jitter"):
        CloakSettings(mimic_downscales=(), mimic_jitter=True)
    assert CloakSettings(mimic_downscales=(1, 4), mimic_jitter=True).mimic_jitter is True


def test_settings_take_non_whole_factors_and_refuse_what_is_not_one() -> None:
    from stylecloak.optimize import OptimizerConfig

    settings = CloakSettings(mimic_downscales=(2, 2.5, 3))
    assert OptimizerConfig.from_settings(settings).mimic_downscales == (2, 2.5, 3)
    for bad in [(0.5,), (True,), (float("inf"),), ("2",)]:
        with pytest.raises(ValueError, match="mimic_downscales must be numbers >= 1"):
            CloakSettings(mimic_downscales=bad)  # type: ignore[arg-type]


def test_mimic_sizes_aim_each_image_at_the_factors_that_take_it_to_them() -> None:
    from stylecloak.optimize import OptimizerConfig
    from stylecloak.settings import factors_for_sizes

    # A mimic that trains at 128 or 256 px and fits the long side shrinks art posted at 320 px 2.5x and 1.25x,
    # at 512 px 4x and 2x; it does not enlarge, so a size at or above the image's gives no view. A whole factor
    # stays an int. Diffusers' DreamBooth scripts bring the short side to the size (the default), bucketing
    # trainers the area.
    assert factors_for_sizes((128, 256), (240, 320), "long-side") == (2.5, 1.25)
    assert factors_for_sizes((128, 256, 512), (384, 512), "long-side") == (4, 2)
    assert isinstance(factors_for_sizes((128,), (256, 256))[0], int)
    assert factors_for_sizes((128, 256), (384, 512)) == (3, 1.5)  # the short side
    assert factors_for_sizes((100,), (200, 800), "area") == (4,)
    assert factors_for_sizes((512,), (300, 400), "long-side") == ()
    with pytest.raises(ValueError, match="must be one of short-side, long-side, area"):
        factors_for_sizes((128,), (256, 256), "diagonal")
    settings = settings_for_options(_cloak_args("--mimic-sizes", "128,256", "--mimic-size-of", "long-side"))
    assert settings.mimic_sizes == (128, 256) and settings.view_factors((352, 200)) == (2.75, 1.375)
    assert OptimizerConfig.from_settings(settings, (352, 200)).mimic_downscales == (2.75, 1.375)
    assert settings_for_options(_cloak_args("--mimic-sizes", "128,256")).view_factors((352, 200)) == (1.5625,)
    assert CloakSettings().view_factors((352, 200)) == (2, 4)  # without sizes, the fixed factors
    with pytest.raises(ValueError, match=r"mimic_size_of \(--mimic-size-of\) must be one of"):
        CloakSettings(mimic_sizes=(128,), mimic_size_of="diagonal")
    with pytest.raises(ValueError, match="depend on the image: pass its size"):
        OptimizerConfig.from_settings(settings)
    # The sizes replace the factors, so a term that needs a shrunk view takes them as its shrunk size.
    assert CloakSettings(mimic_downscales=(1,), mimic_sizes=(128,), view_objective="decoded").mimic_sizes == (128,)
    for bad in [(16,), (128.0,), (True,)]:
        with pytest.raises(ValueError, match="mimic_sizes must be whole numbers of pixels >= 32"):
            CloakSettings(mimic_sizes=bad)  # type: ignore[arg-type]
    for text, words in [("512,abc", "separated by commas"), ("16", ">= 32"), ("", ">= 32"), ("1.5", "separated")]:
        with pytest.raises(ValueError, match=words):
            options.parse_sizes(text)


def test_evaluate_rebuilds_the_factors_a_cloak_recorded_it_aimed_at() -> None:
    from stylecloak.evaluation.pairs import _recorded_aim

    # A cloak's recorded settings (JSON lists) give back the factors it aimed at for this image's size.
    assert _recorded_aim({"mimic_downscales": [2, 4]}).view_factors((256, 384)) == (2, 4)
    sizes = {"mimic_downscales": [2, 4], "mimic_sizes": [128, 256], "mimic_size_of": "long-side"}
    assert _recorded_aim(sizes).view_factors((256, 320)) == (2.5, 1.25)
    for bad in [{"mimic_downscales": [0.5]}, {"mimic_sizes": [16]}, {"mimic_sizes": [128], "mimic_size_of": "x"}]:
        with pytest.raises(ValueError, match="records settings it cannot have been cloaked with"):
            _recorded_aim(bad)
    with pytest.raises(ValueError, match="records shrinks that are not lists"):
        _recorded_aim({"mimic_downscales": "2,4"})


def test_the_view_objective_reaches_the_optimiser_and_needs_a_shrunk_size() -> None:
    from stylecloak.optimize import OptimizerConfig

    settings = settings_for_options(_cloak_args("--view-objective", "decoded"))
    assert settings.view_objective == "decoded"
    assert OptimizerConfig.from_settings(settings).view_objective == "decoded"
    assert settings_for_options(_cloak_args()).view_objective == "latent" == OptimizerConfig().view_objective
    with pytest.raises(ValueError, match=r"needs a mimic_downscales \(--mimic-downscales\) factor above 1"):
        settings_for_options(_cloak_args("--mimic-downscales", "1", "--view-objective", "decoded"))
    with pytest.raises(ValueError, match="view_objective must be one of latent, decoded"):
        CloakSettings(view_objective="pixels")


def test_the_full_size_weight_reaches_the_optimiser_within_its_range() -> None:
    from stylecloak.optimize import OptimizerConfig

    settings = settings_for_options(_cloak_args("--full-size-weight", "0", "--view-objective", "decoded"))
    assert settings.full_size_weight == 0.0 == OptimizerConfig.from_settings(settings).full_size_weight
    assert settings_for_options(_cloak_args()).full_size_weight == 1.0 == OptimizerConfig().full_size_weight
    for bad in ("-0.5", "2"):
        with pytest.raises(ValueError, match=r"must be within \[0, 1\]"):
            settings_for_options(_cloak_args("--full-size-weight", bad))
    with pytest.raises(ValueError, match=r"needs a mimic_downscales \(--mimic-downscales\) factor above 1"):
        settings_for_options(_cloak_args("--mimic-downscales", "1", "--full-size-weight", "0.5"))


def test_the_surrogate_options_reach_the_settings() -> None:
    settings = settings_for_options(_cloak_args("--surrogate", "model.pt", "--surrogate-weight", "2"))
    assert settings.surrogate == "model.pt" and settings.surrogate_weight == 2.0
    assert settings.surrogate_mode == "away"  # the default term
    chosen = settings_for_options(_cloak_args("--surrogate", "model.pt", "--surrogate-mode", "toward-target"))
    assert chosen.surrogate_mode == "toward-target"
    assert settings_for_options(_cloak_args()).surrogate is None
    tuned = settings_for_options(
        _cloak_args("--surrogate", "m.pt", "--surrogate-guidance", "15", "--surrogate-levels", "500,980")
    )
    assert (tuned.surrogate_guidance, tuned.surrogate_levels) == (15.0, (500, 980))
    assert (settings.surrogate_guidance, settings.surrogate_levels) == (7.5, (20, 980))  # the settings' defaults
    with pytest.raises(ValueError, match="0 <= LOW < HIGH <= 1000, got 980,500"):
        settings_for_options(_cloak_args("--surrogate", "m.pt", "--surrogate-levels", "980,500"))
    with pytest.raises(ValueError, match=r"needs a mimic_downscales \(--mimic-downscales\) factor above 1"):
        settings_for_options(_cloak_args("--mimic-downscales", "1", "--surrogate", "model.pt"))


def test_value_parsers_say_what_is_wrong() -> None:
    assert options.parse_noise_levels("500, 980") == (500, 980)
    for bad in ("500", "1,2,3", "low,high"):
        with pytest.raises(ValueError, match="noise levels"):
            options.parse_noise_levels(bad)
    assert options.parse_factors("2, 4") == (2, 4)
    # A mimic shrinks by whatever factor takes the posted size to its training size: non-whole ones too, and a
    # whole one stays an int, so that the settings recorded in a cloak read 2, not 2.0.
    assert options.parse_factors("2,2.5,3.0") == (2, 2.5, 3) and isinstance(options.parse_factors("3.0")[0], int)
    for bad, words in [("0", ">= 1"), ("x", "separated by commas"), ("", ">= 1"), ("0.5", ">= 1"), ("nan", ">= 1")]:
        with pytest.raises(ValueError, match=words):
            options.parse_factors(bad)
    assert options.parse_folds("LOO") == "loo" and options.parse_folds("3") == 3
    with pytest.raises(ValueError, match="at least 2"):
        options.parse_folds("1")
    with pytest.raises(ValueError, match="clip:PATH"):
        options.parse_descriptor("clip:")
    with pytest.raises(ValueError, match="between 0 and 20"):
        options.parse_blur_sigma("21")


def test_the_mimic_presets_named_on_the_command_line_exist() -> None:
    from stylecloak.evaluation.mimic import MIMIC_PRESETS

    assert set(options.MIMIC_PRESET_NAMES) == set(MIMIC_PRESETS)


def test_inputs_expand_folders_and_skip_our_outputs(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "a.cloaked.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    missing = tmp_path / "missing.png"
    assert list(expand_inputs([tmp_path, missing])) == [tmp_path / "a.png", missing]


def test_one_unwritable_folder_fails_only_its_inputs(tmp_path: Path) -> None:
    good, taken = tmp_path / "good", tmp_path / "taken"
    good.mkdir()
    taken.write_text("a file, not a folder")
    inputs = [good / "a.png", taken / "b.png"]
    kept, lines = writable_inputs(inputs, None)
    assert kept == [good / "a.png"] and len(lines) == 1 and str(taken) in lines[0]
    kept, lines = writable_inputs(inputs, taken)  # one output folder for all: nothing can be written
    assert kept == [] and len(lines) == 1


def test_the_closing_line_speaks_of_others_only_when_there_are_some() -> None:
    assert failure_summary(1, 1, "images", "written") == "the image failed; nothing was written"
    assert failure_summary(3, 3, "pairs", "measured") == "all 3 pairs failed; nothing was measured"
    assert failure_summary(1, 3, "images", "written") == "1 of 3 images failed; the others were written"


def test_a_cloak_run_that_cannot_write_stops_before_loading_models(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("x")
    errors: list[str] = []
    request = CloakFilesRequest([PAINTINGS / "hokusai_great_wave.png"], CloakSettings(steps=1), out_dir=taken)
    with pytest.raises(CloakRunError) as info:
        cloak_files(request, CloakEvents(error=errors.append))
    assert not info.value.usage and "nothing was written" in str(info.value)
    assert len(errors) == 1 and "is a file" in errors[0]
    with pytest.raises(CloakRunError, match="no images found"):
        cloak_files(CloakFilesRequest([], CloakSettings()))


def test_a_cloak_run_goes_on_past_a_bad_file_and_reports_each(tmp_path: Path) -> None:
    painting = tmp_path / "wave.png"
    from PIL import Image

    Image.open(PAINTINGS / "hokusai_great_wave.png").convert("RGB").resize((96, 64)).save(painting)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    seen: dict[str, list] = {"notes": [], "errors": [], "started": [], "done": [], "written": []}
    events = CloakEvents(
        note=seen["notes"].append,
        error=seen["errors"].append,
        image_started=lambda n, count, path, steps: seen["started"].append((n, count, path.name, steps)),
        image_done=lambda path: seen["done"].append(path.name),
        written=seen["written"].append,
    )
    # The request's catalogue name is the target, whatever the settings' default says.
    request = CloakFilesRequest([tmp_path], CloakSettings(steps=1), TargetRequest("woodcut"))
    summary = cloak_files(request, events)
    assert (summary.failures, summary.total, len(summary.reports)) == (1, 2, 1)
    assert summary.failure_line() == "1 of 2 images failed; the others were written"
    assert [s[:3] for s in seen["started"]] == [(1, 2, "broken.png"), (2, 2, "wave.png")]
    assert seen["done"] == ["broken.png", "wave.png"]  # told however each ended
    assert len(seen["errors"]) == 1 and seen["errors"][0].startswith(str(tmp_path / "broken.png"))
    assert Path(seen["written"][0].output).name == "wave.cloaked.png" and seen["notes"] == []
    assert summary.reports[0].target == "woodcut"


def test_evaluate_pairs_two_files_or_two_folders(tmp_path: Path) -> None:
    plan = plan_pairs(tmp_path / "a.png", tmp_path / "a.cloaked.png")
    assert plan.pairs == [("a", tmp_path / "a.png", tmp_path / "a.cloaked.png")]
    assert plan.default_out == tmp_path / "model-view"
    with pytest.raises(ValueError, match="both be"):
        plan_pairs(tmp_path, tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "b.cloaked.png").write_bytes(b"x")
    (tmp_path / "lonely.png").write_bytes(b"x")
    plan = plan_pairs(tmp_path, tmp_path)
    assert [name for name, _, _ in plan.pairs] == ["b"] and len(plan.unpaired) == 1
    assert plan.default_out == tmp_path / "model-view"


def test_serving_beyond_this_computer_needs_asking_and_a_token(tmp_path: Path) -> None:
    assert is_loopback("localhost") and is_loopback("::1") and not is_loopback("0.0.0.0")
    with pytest.raises(LaunchError, match="--allow-remote"):
        plan_serving(ServeOptions(host="0.0.0.0"))
    with pytest.raises(LaunchError, match="needs a token"):
        plan_serving(ServeOptions(host="0.0.0.0", allow_remote=True))
    plan = plan_serving(ServeOptions(host="0.0.0.0", allow_remote=True, data=str(tmp_path)), "s3cret")
    assert plan.remote and plan.token == "s3cret" and plan.url == "http://0.0.0.0:8765/?token=s3cret"
    with pytest.raises(LaunchError, match="1-65535"):
        plan_serving(ServeOptions(port=0, data=str(tmp_path)))
    (tmp_path / "file").write_text("x")
    with pytest.raises(LaunchError, match="is a file"):
        plan_serving(ServeOptions(data=str(tmp_path / "file")))
    assert plan_serving(ServeOptions(host="::1", data=str(tmp_path))).url == "http://[::1]:8765/"


def test_the_model_table_says_what_each_model_is_and_where(monkeypatch: pytest.MonkeyPatch) -> None:
    from stylecloak.models.registry import KNOWN_MODELS, describe_model, models_to_fetch_first

    text = describe_model(KNOWN_MODELS["taef2"])
    assert text.startswith("taef2") and "licence MIT" in text and "present: " in text
    assert "stylecloak models fetch taesd" in KNOWN_MODELS["taesd"].missing_message()
    # the default encoder is never fetched unasked, even when missing
    monkeypatch.setenv("STYLECLOAK_MODELS", "/nonexistent")
    monkeypatch.setenv("STYLECLOAK_CACHE", "/nonexistent-cache")
    assert [m.name for m in models_to_fetch_first("taef2+taesd")] == ["taesd"]


def test_argparse_shows_the_librarys_reason_for_a_bad_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["cloak", "x.png", "--mimic-downscales", "0"])
    assert "factors must be numbers >= 1" in capsys.readouterr().err
    assert isinstance(build_parser(), argparse.ArgumentParser)


def test_the_version_is_the_one_pyproject_declares() -> None:
    import tomllib

    from stylecloak import __version__

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert __version__ == pyproject["project"]["version"]
