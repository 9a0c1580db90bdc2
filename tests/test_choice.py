"""Style descriptors, the portfolio's target choice (`--target auto`), pinning, and the contact sheet."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylecloak.cli import main
from stylecloak.descriptors import GramDescriptor, LatentStatsDescriptor, style_distance
from stylecloak.imaging import image_to_tensor
from stylecloak.targets import available_targets
from stylecloak.targets.choice import PIN_FILENAME, TargetChoice, choose_target, read_pin, write_pin

from .conftest import PAINTINGS, load_painting

UKIYO_E = ("hiroshige_", "hokusai_")


@pytest.fixture(scope="module")
def gram():
    from stylecloak.models.lpips import load_vgg16_features

    return GramDescriptor(load_vgg16_features())


def _jpeg_copy(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer), dtype=np.float32) / 255.0


def _painting_names() -> list[str]:
    with open(PAINTINGS / "manifest.csv", newline="") as f:
        return [row["file"] for row in csv.DictReader(f)]


def _renditions_farther_than_jpeg(gram, names: list[str]) -> list[tuple[str, str, float, float]]:
    """The (painting, target) pairs whose rendition is not farther from the painting than a JPEG q75 copy."""
    targets = available_targets()
    assert len(targets) >= 8
    failures = []
    for name in names:
        rgb = load_painting(name, 192)
        painting = gram.describe(image_to_tensor(rgb))
        jpeg = style_distance(painting, gram.describe(image_to_tensor(_jpeg_copy(rgb, 75))))
        for target in targets:
            rendition = style_distance(painting, gram.describe(target.render(image_to_tensor(rgb))))
            if rendition <= jpeg:
                failures.append((name, target.name, rendition, jpeg))
    return failures


def test_every_rendition_is_farther_than_a_jpeg_copy(gram) -> None:
    """The descriptor sees style: on one painting of each kind (a print, a portrait, an abstraction, a busy
    genre scene), each rendition is farther than a JPEG q75 copy. Every shared painting: the slow test below."""
    names = [
        "hokusai_great_wave.png",
        "leonardo_mona_lisa.png",
        "kandinsky_composition_viii.png",
        "bruegel_harvesters.png",
    ]
    assert not _renditions_farther_than_jpeg(gram, names)


@pytest.mark.slow
def test_every_rendition_is_farther_than_a_jpeg_copy_for_every_painting(gram) -> None:
    assert not _renditions_farther_than_jpeg(gram, _painting_names())


def test_latent_descriptor_sees_style_too(encoder) -> None:
    descriptor = LatentStatsDescriptor(encoder)
    rgb = load_painting("hokusai_great_wave.png", 192)
    painting = descriptor.describe(image_to_tensor(rgb))
    jpeg = style_distance(painting, descriptor.describe(image_to_tensor(_jpeg_copy(rgb, 75))))
    woodcut = next(t for t in available_targets() if t.name == "woodcut")
    assert style_distance(painting, descriptor.describe(woodcut.render(image_to_tensor(rgb)))) > jpeg


class _Named:
    """A fake target that shifts brightness by a set amount: a descriptor of mean colour orders them exactly."""

    description = "test"

    def __init__(self, name: str, shift: float) -> None:
        self.name, self.shift = name, shift

    def render(self, image: torch.Tensor, seed: int = 0) -> torch.Tensor:
        return (image + self.shift).clamp(0, 1)


class _MeanColour:
    name = "mean-colour"

    def describe(self, image: torch.Tensor) -> torch.Tensor:
        return image.mean(dim=(0, 2, 3))


def test_choice_is_far_but_not_the_farthest() -> None:
    candidates = [_Named(f"t{i}", 0.05 * i) for i in range(1, 10)]  # distances grow with i
    images = [torch.full((1, 3, 32, 32), 0.2), torch.full((1, 3, 32, 48), 0.3)]
    choice = choose_target(images, _MeanColour(), candidates)
    assert [c.target for c in choice.candidates] == [f"t{i}" for i in range(1, 10)]
    chosen = next(c for c in choice.candidates if c.target == choice.target)
    assert 50 <= chosen.percentile <= 75 and choice.target != "t9"
    assert choice.images == 2 and choice.descriptor == "mean-colour"
    # The choice is a property of the portfolio: the same images in another order give the same target.
    assert choose_target(images[::-1], _MeanColour(), candidates).target == choice.target


def test_pin_round_trip_and_bad_pin(tmp_path) -> None:
    choice = TargetChoice("woodcut", "gram", (50.0, 75.0), 3)
    path = write_pin(tmp_path, choice, "0.0")
    assert path.name == PIN_FILENAME and read_pin(tmp_path) == "woodcut"
    assert read_pin(tmp_path / "nowhere") is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match="settings file"):
        read_pin(tmp_path)


@pytest.fixture(scope="module")
def ukiyo_e_folder(tmp_path_factory) -> Path:
    """4 of the 9 ukiyo-e prints of the shared set, at 96 px: the command line's wiring of the choice (the choice
    itself is tested in the library, tests/test_target_resolution.py)."""
    folder = tmp_path_factory.mktemp("ukiyo_e")
    names = [n for n in _painting_names() if n.startswith(UKIYO_E)]
    assert len(names) == 9
    names = names[:4]
    for name in names:
        Image.fromarray((load_painting(name, 96) * 255).round().astype(np.uint8)).save(folder / name)
    return folder


@pytest.mark.slow  # the wiring; the choice and its pin are tested in the library (test_target_resolution.py)
def test_cloak_auto_uses_one_target_for_the_portfolio_and_pins_it(ukiyo_e_folder, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["cloak", str(ukiyo_e_folder), "-o", str(out), "--target", "auto", "--json", "--steps", "1"]) == 0
    captured = capsys.readouterr()
    reports = [json.loads(line) for line in captured.out.splitlines()]
    assert len(reports) == 4
    targets = {r["target"] for r in reports}
    assert len(targets) == 1
    (chosen,) = targets
    assert chosen in {t.name for t in available_targets()}
    assert read_pin(out) == chosen and "chosen for 4 image(s)" in captured.err

    # `targets choose` shows the same choice with every distance.
    assert main(["targets", "choose", str(ukiyo_e_folder), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["target"] == chosen and len(shown["candidates"]) == len(available_targets())

    # An image cloaked later into the same folder gets the pinned target, even if alone it would differ.
    later = tmp_path / "later"
    later.mkdir()
    Image.fromarray((load_painting("kandinsky_composition_viii.png", 96) * 255).round().astype(np.uint8)).save(
        later / "k.png"
    )
    assert main(["cloak", str(later / "k.png"), "-o", str(out), "--json", "--steps", "1"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["target"] == chosen and "pinned in" in captured.err


def test_contact_sheet(tmp_path, capsys) -> None:
    source = tmp_path / "wave.png"
    Image.fromarray((load_painting("hokusai_great_wave.png", 200) * 255).round().astype(np.uint8)).save(source)
    sheet = tmp_path / "sheet.png"
    assert main(["targets", "render", str(source), "--all", "-o", str(sheet)]) == 0
    with Image.open(sheet) as im:
        panels = 1 + len(available_targets())
        assert im.width > 3 * 320 and im.height > (panels // 4) * 200
    single = tmp_path / "woodcut.png"
    assert main(["targets", "render", str(source), "--target", "woodcut", "-o", str(single)]) == 0
    assert Image.open(single).size == Image.open(source).size
    assert main(["targets", "render", str(source), "--target", "nope", "-o", str(single)]) == 1
    assert "known target styles" in capsys.readouterr().err


def test_target_cache_is_keyed_by_content_and_exact(tmp_path) -> None:
    from stylecloak.targets import get_target
    from stylecloak.targets.cache import render_cached

    woodcut = get_target("woodcut")
    image = image_to_tensor(load_painting("durer_lion.png", 96))
    first = render_cached(woodcut, image, seed=0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    again = render_cached(woodcut, image, seed=0, cache_dir=tmp_path)
    assert torch.equal(first, again)
    assert torch.equal(first, render_cached(woodcut, image, seed=0, cache_dir=None))  # cached == fresh, bit for bit
    render_cached(woodcut, image.flip(-1), seed=0, cache_dir=tmp_path)  # other content, other entry
    assert len(list(tmp_path.glob("*.npy"))) == 2
    for entry in tmp_path.glob("*.npy"):
        entry.write_bytes(b"damaged")
    assert torch.equal(render_cached(woodcut, image, seed=0, cache_dir=tmp_path), first)


@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("references")
    for name in ("kandinsky_composition_viii.png", "vangogh_village_street_auvers.png"):
        Image.fromarray((load_painting(name, 128) * 255).round().astype(np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image: skipped")
    return folder


def test_reference_style_transfer_moves_towards_the_references(reference_folder, gram) -> None:
    from stylecloak.targets.transfer import load_reference_images, reference_transfer

    references = load_reference_images(reference_folder, long_side=128)
    assert len(references) == 2
    transfer = reference_transfer(gram.vgg, references, steps=30)
    assert transfer.name.startswith("refs-")
    image = image_to_tensor(load_painting("hokusai_great_wave.png", 128))
    rendered = transfer.render(image)
    assert rendered.shape == image.shape and 0 <= float(rendered.min()) and float(rendered.max()) <= 1
    assert torch.equal(rendered, transfer.render(image))  # deterministic
    # Gram statistics depend on scale: compare at the 128 px the transfer worked at.
    at_128 = GramDescriptor(gram.vgg, long_side=128)
    style = torch.stack([at_128.describe(r) for r in references]).mean(dim=0)
    assert style_distance(at_128.describe(rendered), style) < 0.8 * style_distance(at_128.describe(image), style)


def test_reference_transfer_refines_at_the_image_resolution(reference_folder, gram) -> None:
    """Above the working size, a fine pass on tiles brings the references' texture to the image's own pixels."""
    from stylecloak.targets.transfer import load_reference_images, reference_transfer

    references = load_reference_images(reference_folder, long_side=128)
    options = dict(steps=20, work_long_side=96, refine_tile=128, refine_context=32)
    fine = reference_transfer(gram.vgg, references, refine_steps=15, **options)
    coarse = reference_transfer(gram.vgg, references, refine_steps=0, **options)
    assert fine.name != coarse.name and fine.name.endswith("-fine15")  # the cache tells them apart
    image = image_to_tensor(load_painting("hokusai_great_wave.png", 320))
    rendered = fine.render(image)
    assert rendered.shape == image.shape
    # At the image's own pixel scale, the fine result's texture statistics are closer to the references'.
    at_full = GramDescriptor(gram.vgg, long_side=320)
    style = torch.stack([GramDescriptor(gram.vgg, long_side=128).describe(r) for r in references]).mean(dim=0)
    assert style_distance(at_full.describe(rendered), style) < style_distance(
        at_full.describe(coarse.render(image)), style
    )


def test_cloak_with_reference_images(reference_folder, small_painting_file, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    args = ["--target-images", str(reference_folder)]
    assert main(["cloak", str(small_painting_file), "-o", str(out), "--json", "--steps", "2", *args]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["target"].startswith("refs-") and report["lpips"] <= 0.05 and report["target_progress"] > 0
    assert main(["evaluate", str(small_painting_file), report["output"], "--json", *args]) == 0
    assert json.loads(capsys.readouterr().out)["target_progress"] == pytest.approx(report["target_progress"], abs=1e-3)
    assert main(["cloak", str(small_painting_file), "--target-images", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
