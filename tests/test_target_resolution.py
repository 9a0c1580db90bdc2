"""Target resolution in the library (stylecloak.targets.resolve): what the command line, the web app and the batch
path all call. Small images, real VGG16 (from the LPIPS weights) and the real catalogue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylecloak.targets import available_targets
from stylecloak.targets.choice import PIN_FILENAME, read_pin
from stylecloak.targets.resolve import (
    TargetRequest,
    TargetResolutionError,
    choose_for_inputs,
    make_descriptor,
    resolve_target,
)

from .conftest import load_painting

CPU = torch.device("cpu")
PRINTS = ("hokusai_great_wave.png", "hokusai_poppies.png", "hiroshige_inokashira_snow.png")


@pytest.fixture(scope="module")
def vgg():
    from stylecloak.models.lpips import load_vgg16_features

    return load_vgg16_features()


@pytest.fixture(scope="module")
def prints(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("prints")
    paths = []
    for name in PRINTS:
        path = folder / name
        Image.fromarray((load_painting(name, 64) * 255).round().astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def test_a_catalogue_name_is_used_as_it_is_and_a_wrong_one_is_one_line(prints) -> None:
    resolved = resolve_target(TargetRequest("woodcut"), prints, CPU)
    assert resolved.name == "woodcut" and resolved.style is None and resolved.notes == []
    with pytest.raises(TargetResolutionError, match="woodcut") as info:
        resolve_target(TargetRequest("no-such-style"), prints, CPU)
    assert "\n" not in str(info.value)


def test_auto_chooses_one_target_for_the_portfolio_pins_it_and_reuses_the_pin(prints, vgg, tmp_path) -> None:
    pins = tmp_path / "out"
    first = resolve_target(TargetRequest(), prints, CPU, pin_folder=pins, version="test", vgg=vgg)
    assert first.name in {t.name for t in available_targets()}
    assert first.choice is not None and first.choice.images == 3 and read_pin(pins) == first.name
    assert "chosen for 3 image(s), pinned in" in first.notes[0]
    # A later run, with one other image alone, gets the pinned target and no new choice.
    alone = resolve_target(TargetRequest(), prints[:1], CPU, pin_folder=pins, vgg=vgg)
    assert alone.name == first.name and alone.choice is None and "pinned in" in alone.notes[0]
    # Without a pin folder the choice is the same and nothing is written.
    unpinned = resolve_target(TargetRequest(), prints, CPU, vgg=vgg)
    assert unpinned.name == first.name and unpinned.pin is None
    # What `targets choose` prints: every candidate's distance, the chosen one marked.
    table = first.choice.table().splitlines()
    assert len(table) == 1 + len(available_targets()) and [line for line in table if "<- chosen" in line] == [
        next(line for line in table if line.startswith(first.name + " "))
    ]
    with pytest.raises(TargetResolutionError, match="no images found"):
        choose_for_inputs([])


def test_auto_with_nothing_readable_falls_back_and_pins_nothing(tmp_path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    resolved = resolve_target(TargetRequest(), [broken], CPU, pin_folder=tmp_path / "out", fallback="mosaic")
    assert resolved.name == "mosaic" and not (tmp_path / "out" / PIN_FILENAME).exists()


def test_a_bad_pin_is_an_error_naming_the_file(prints, tmp_path) -> None:
    (tmp_path / PIN_FILENAME).write_text("{not json")
    with pytest.raises(TargetResolutionError, match="settings file"):
        resolve_target(TargetRequest(), prints, CPU, pin_folder=tmp_path)
    (tmp_path / PIN_FILENAME).write_text('{"target": "gone-style"}')
    with pytest.raises(TargetResolutionError, match="gone-style"):
        resolve_target(TargetRequest(), prints, CPU, pin_folder=tmp_path)


def test_an_unwritable_pin_folder_is_a_warning_not_a_failure(prints, vgg, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the pin folder should be")
    resolved = resolve_target(TargetRequest(), prints, CPU, pin_folder=blocker / "pins", vgg=vgg)
    assert resolved.pin is None and resolved.notes[0].startswith("warning:") and "not pinned" in resolved.notes[0]


def test_reference_images_give_a_style_object(prints, vgg, tmp_path) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    Image.fromarray((load_painting("kandinsky_composition_viii.png", 64) * 255).round().astype(np.uint8)).save(
        refs / "k.png"
    )
    resolved = resolve_target(TargetRequest(reference_images=refs), prints, CPU, vgg=vgg)
    assert resolved.name.startswith("refs-") and resolved.style is not None and resolved.style.name == resolved.name
    with pytest.raises(TargetResolutionError, match="not a folder"):
        resolve_target(TargetRequest(reference_images=tmp_path / "missing"), prints, CPU, vgg=vgg)


def test_sd_prompt_without_a_model_says_what_is_missing(prints) -> None:
    with pytest.raises(TargetResolutionError, match="--target-model"):
        resolve_target(TargetRequest("sd:a watercolour"), prints, CPU)


def test_descriptor_names(vgg) -> None:
    assert make_descriptor("gram", CPU, vgg=vgg).name == "gram"
    with pytest.raises(TargetResolutionError, match="unknown style descriptor"):
        make_descriptor("colour", CPU)
