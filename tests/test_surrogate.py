"""The surrogate diffusion model of the experimental denoiser-aware term: trained on other art (real TAEF2, tiny
UNet), saved and loaded, and its two terms in the optimiser's loss."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from stylecloak.evaluation.mimic import MimicConfig
from stylecloak.evaluation.surrogate_figure import relative_denoising_loss
from stylecloak.imaging import image_to_tensor
from stylecloak.models.surrogate import (
    DenoiserTerm,
    load_surrogate,
    save_surrogate,
    synthetic_surrogate_classes,
    train_artist_surrogate,
    train_surrogate,
)
from stylecloak.models.synthetic_art import synthetic_paintings
from stylecloak.optimize import OptimizerConfig, optimize_cloak, quantize_8bit
from stylecloak.targets import get_target

from .conftest import load_painting

TINY = MimicConfig(
    image_size=64, crop=32, base_steps=3, batch_size=4, channels=(16, 32), attention_levels=(False, True), seed=1
)


@pytest.fixture(scope="module")
def surrogate(encoder, tmp_path_factory):
    art = [
        image_to_tensor(load_painting(name, 96))
        for name in ("bazille_ramparts_aigues_mortes.png", "kandinsky_composition_viii.png")
    ]
    hatched = [get_target("ink-hatching").render(image, seed=1) for image in art]
    model = train_surrogate({"art": art, "rendition:ink-hatching": hatched}, encoder, torch.device("cpu"), TINY)
    path = tmp_path_factory.mktemp("surrogate") / "surrogate.pt"
    save_surrogate(model, path)
    return model, path


def test_a_saved_surrogate_loads_as_the_same_model(surrogate) -> None:
    model, path = surrogate
    loaded = load_surrogate(path, torch.device("cpu"))
    assert loaded.labels == ["art", "rendition:ink-hatching"] and loaded.config == model.config
    z = torch.randn(1, model.mean.shape[1], 4, 4)
    t, label = torch.tensor([500]), torch.tensor([1])
    with torch.no_grad():
        assert torch.allclose(
            loaded.unet(z, t, class_labels=label).sample, model.unet.eval()(z, t, class_labels=label).sample
        )


@pytest.mark.parametrize("mode", ["toward-target", "away"])
def test_each_term_is_normalised_differentiable_and_takes_any_latent_size(surrogate, mode) -> None:
    model, _ = surrogate
    term = DenoiserTerm(model, mode, "rendition:ink-hatching", weight=2.0)
    latents = torch.randn(1, model.mean.shape[1], 7, 5, requires_grad=True)  # not a multiple of the UNet's 2
    values = [float(term.loss(latents, ("view",)).detach()) for _ in range(64)]
    # Normalised by its mean size on the first latents: about the weight (sign: "away" raises a loss).
    mean = sum(values) / len(values)
    assert 0.5 * 2.0 < abs(mean) < 2.0 * 2.0 and (mean < 0) == (mode == "away")
    term.loss(latents, ("view",)).backward()
    assert latents.grad is not None and latents.grad.abs().sum() > 0
    # The draws repeat after a reset.
    term.reset()
    first = float(term.loss(latents, ("view",)).detach())
    term.reset()
    assert float(term.loss(latents, ("view",)).detach()) == first


def test_a_term_checks_its_mode_class_and_weight(surrogate) -> None:
    model, _ = surrogate
    with pytest.raises(ValueError, match="mode"):
        DenoiserTerm(model, "sideways", "art")
    with pytest.raises(ValueError, match="no class 'rendition:mosaic'"):
        DenoiserTerm(model, "toward-target", "rendition:mosaic")
    with pytest.raises(ValueError, match="weight"):
        DenoiserTerm(model, "away", weight=-1.0)


def test_a_negative_class_replaces_the_unconditioned_prediction_in_the_guidance(surrogate) -> None:
    model, _ = surrogate
    label = "rendition:ink-hatching"
    latents = torch.randn(1, model.mean.shape[1], 6, 6)

    def raw(**fields) -> float:
        return DenoiserTerm(model, "toward-target", label, **fields).mean_over_levels(latents, levels=4, seed=3)

    # Guided from the target's own class the guidance has nothing to add: the estimate is the class's own
    # prediction, as at guidance 1 from the unconditioned one.
    assert raw(guidance=7.0, negative_label=label) == pytest.approx(raw(guidance=1.0), rel=1e-5)
    assert raw(guidance=7.0, negative_label="art") != raw(guidance=7.0)  # (a 3-step model: classes barely apart)
    # No label: toward the unconditioned prediction, away from the negative class alone.
    assert raw(guidance=7.0, negative_label="art") != DenoiserTerm(
        model, "toward-target", None, guidance=7.0, negative_label="art"
    ).mean_over_levels(latents, levels=4, seed=3)
    with pytest.raises(ValueError, match="no class None"):
        DenoiserTerm(model, "toward-target", None)
    with pytest.raises(ValueError, match="negative class"):
        DenoiserTerm(model, "toward-target", label, negative_label="artist")
    with pytest.raises(ValueError, match="negative class"):
        DenoiserTerm(model, "away", negative_label="art")


def test_the_artist_surrogate_learns_the_artists_class_by_fine_tuning_as_the_mimic_does(encoder) -> None:
    others = {"art": [image_to_tensor(load_painting("kandinsky_composition_viii.png", 96))]}
    artist = [image_to_tensor(load_painting("bazille_ramparts_aigues_mortes.png", 96))]
    config = replace(TINY, steps=2)
    model = train_artist_surrogate(others, artist, encoder, torch.device("cpu"), config)
    assert model.labels == ["artist", "art"] and len(model.losses) == 2  # the fine-tuning's steps
    DenoiserTerm(model, "toward-target", "art", negative_label="artist")  # a class guidance can steer from
    with pytest.raises(ValueError, match="other names"):
        train_artist_surrogate({"artist": artist}, artist, encoder, torch.device("cpu"), config)
    with pytest.raises(ValueError, match="at least one"):
        train_artist_surrogate(others, [], encoder, torch.device("cpu"), config)


def test_the_optimiser_adds_the_term_on_the_shrunk_views_and_keeps_the_bounds(encoder, lpips_alex, surrogate) -> None:
    model, _ = surrogate
    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 128)))
    target = get_target("ink-hatching").render(original, seed=0)
    config = OptimizerConfig(steps=3, patience=0, mimic_downscales=(2,), view_objective="decoded", full_size_weight=0)
    term = DenoiserTerm(model, "toward-target", "rendition:ink-hatching", weight=1.0)
    plain = optimize_cloak(original, target, encoder, lpips_alex, config)
    with_term = optimize_cloak(original, target, encoder, lpips_alex, config, denoiser=term)
    assert not torch.equal(plain.cloaked, with_term.cloaked)
    assert with_term.visibility is not None and with_term.visibility.violations(config.bounds) == []
    # The `away` term's own figure (what `evaluate --surrogate` prints): 1 for the original itself, and higher
    # for a cloak made with the term than for one made without it, through the same surrogate.
    away = optimize_cloak(original, target, encoder, lpips_alex, config, denoiser=DenoiserTerm(model, "away"))
    figure = {
        name: relative_denoising_loss(model, encoder, original, quantize_8bit(outcome.cloaked))
        for name, outcome in (("plain", plain), ("away", away))
    }
    assert relative_denoising_loss(model, encoder, original, original) == pytest.approx(1.0)
    assert figure["away"] > figure["plain"] + 0.005, figure
    with pytest.raises(ValueError, match="shrunk views"):
        optimize_cloak(original, target, encoder, lpips_alex, OptimizerConfig(steps=1, mimic_downscales=()), None, term)


def test_settings_load_the_surrogate_as_the_away_term_and_refuse_what_cannot_work(surrogate, tmp_path) -> None:
    from stylecloak.pipeline import load_denoiser
    from stylecloak.settings import CloakSettings

    _, path = surrogate
    term = load_denoiser(CloakSettings(surrogate=str(path), surrogate_weight=0.5), torch.device("cpu"))
    assert term is not None and term.mode == "away" and term.weight == 0.5
    assert load_denoiser(CloakSettings(), torch.device("cpu")) is None
    with pytest.raises(ValueError, match="surrogate model not found"):
        load_denoiser(CloakSettings(surrogate=str(tmp_path / "none.pt")), torch.device("cpu"))
    (tmp_path / "picture.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is not a surrogate model"):
        load_denoiser(CloakSettings(surrogate=str(tmp_path / "picture.pt")), torch.device("cpu"))
    with pytest.raises(ValueError, match="shrunk sizes"):
        CloakSettings(surrogate=str(path), mimic_downscales=(1,))
    with pytest.raises(ValueError, match="surrogate_weight"):
        CloakSettings(surrogate_weight=0)


def test_settings_choose_the_term_for_the_cloakers_target_and_retargeting_rebuilds_it(
    encoder, lpips_alex, surrogate
) -> None:
    from stylecloak.models.surrogate import CombinedTerm
    from stylecloak.pipeline import Cloaker, load_denoiser
    from stylecloak.settings import CloakSettings

    model, path = surrogate
    cpu = torch.device("cpu")
    toward = CloakSettings(surrogate=str(path), surrogate_mode="toward-target", target="ink-hatching", seed=3)
    term = load_denoiser(toward, cpu)
    assert term.mode == "toward-target" and term.label == "rendition:ink-hatching" and term.seed == 3
    both = load_denoiser(replace(toward, surrogate_mode="both", surrogate_weight=2.0), cpu, model=model)
    assert isinstance(both, CombinedTerm) and [t.mode for t in both.terms] == ["away", "toward-target"]
    assert both.weight == 4.0  # each term keeps its own weight
    # The guidance and the noise levels come from the settings, the levels to every term.
    assert (term.guidance, term.timestep_range) == (7.5, (20, 980))
    tuned = load_denoiser(
        replace(toward, surrogate_mode="both", surrogate_guidance=15.0, surrogate_levels=(500, 980)), cpu, model=model
    )
    assert [t.timestep_range for t in tuned.terms] == [(500, 980), (500, 980)] and tuned.terms[1].guidance == 15.0
    latents = torch.randn(1, model.mean.shape[1], 6, 6, requires_grad=True)
    both.loss(latents, ("view",)).backward()
    assert latents.grad is not None and latents.grad.abs().sum() > 0
    # A target the surrogate never learned cannot be pulled toward: one line that names what it knows.
    with pytest.raises(ValueError, match="has none for 'mosaic'; it knows: ink-hatching"):
        load_denoiser(replace(toward, target="mosaic"), cpu, model=model)
    # "away" needs no class, so it works for any target.
    assert load_denoiser(replace(toward, surrogate_mode="away", target="mosaic"), cpu, model=model).mode == "away"
    with pytest.raises(ValueError, match="surrogate_mode"):
        CloakSettings(surrogate_mode="sideways")
    for levels in ((980, 500), (0, 1001), (1, 2, 3), (0.5, 900)):
        with pytest.raises(ValueError, match=r"surrogate_levels \(--surrogate-levels\) must be two whole"):
            CloakSettings(surrogate_levels=levels)
    with pytest.raises(ValueError, match="surrogate_guidance"):
        CloakSettings(surrogate_guidance=-1)
    # The cloaker loads the model once; a new target gets its own class from the same model.
    cloaker = Cloaker(toward, encoder=encoder, perceptual=lpips_alex, cache_targets=False)
    assert cloaker.denoiser.label == "rendition:ink-hatching"
    moved = cloaker.retarget("ink-hatching")
    assert moved.surrogate_model is cloaker.surrogate_model and moved.denoiser is not cloaker.denoiser
    with pytest.raises(ValueError, match="has none for 'mosaic'"):
        cloaker.retarget("mosaic")
    # A term handed in is kept as it is, whatever the target.
    given = DenoiserTerm(model, "away")
    kept = Cloaker(toward, encoder=encoder, perceptual=lpips_alex, cache_targets=False, denoiser=given)
    assert kept.retarget("mosaic").denoiser is given


def test_synthetic_paintings_are_repeatable_varied_images():
    first = synthetic_paintings(4, long_side=96, seed=3)
    again = synthetic_paintings(4, long_side=96, seed=3)
    other = synthetic_paintings(4, long_side=96, seed=4)
    for image, same in zip(first, again):
        assert torch.equal(image, same)
        assert image.shape[:2] == (1, 3) and max(image.shape[-2:]) == 96
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
        assert float(image.std()) > 0.02  # not a flat field
    assert not any(a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, other))
    assert len({tuple(x.shape[-2:]) for x in synthetic_paintings(12, long_side=64, seed=0)}) > 1  # several formats


def test_synthetic_paintings_reject_bad_arguments():
    with pytest.raises(ValueError, match="count"):
        synthetic_paintings(0)
    with pytest.raises(ValueError, match="long_side"):
        synthetic_paintings(1, long_side=8)


def test_synthetic_surrogate_classes_hold_the_images_and_one_rendition_class_per_style():
    from stylecloak.targets import available_targets

    classes = synthetic_surrogate_classes(count=2, seed=0)
    assert list(classes) == ["art"] + [f"rendition:{t.name}" for t in available_targets()]
    assert all(len(images) == 2 for images in classes.values())
    assert not torch.equal(classes["art"][0], classes["rendition:mosaic"][0])


def test_the_surrogate_command_saves_a_model_the_cloak_loads_and_never_overwrites(
    monkeypatch, tmp_path, capsys
) -> None:
    import stylecloak.models.surrogate as surrogate_module
    from stylecloak.cli import main
    from stylecloak.pipeline import load_denoiser
    from stylecloak.settings import CloakSettings

    def tiny_training(encoder, device, count, seed, progress):  # the real one takes minutes
        assert (count, seed) == (2, 7)
        small = {label: [x[..., :64, :64] for x in images] for label, images in synthetic_surrogate_classes(2).items()}
        return train_surrogate(small, encoder, device, TINY, progress)

    monkeypatch.setattr(surrogate_module, "train_synthetic_surrogate", tiny_training)
    out = tmp_path / "surrogate.pt"
    assert main(["surrogate", str(out), "--images", "2", "--seed", "7"]) == 0
    assert str(out) in capsys.readouterr().out
    term = load_denoiser(CloakSettings(surrogate=str(out)), torch.device("cpu"))
    assert term is not None and term.mode == "away" and "rendition:mosaic" in term.model.labels
    before = out.read_bytes()
    assert main(["surrogate", str(out)]) == 2  # exists: refused, the file as it was
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["surrogate", str(tmp_path / "missing" / "s.pt")]) == 2
    assert "no folder" in capsys.readouterr().err


def test_an_ensemble_splits_the_weight_between_its_models_and_draws_its_own_noise_for_each(surrogate) -> None:
    from stylecloak.models.surrogate import CombinedTerm, denoiser_for, ensemble_denoiser

    model, path = surrogate
    other = load_surrogate(path, torch.device("cpu"))  # another copy stands in for a second surrogate
    # One model: the term denoiser_for gives, unchanged.
    single = ensemble_denoiser([model], "toward-target", "ink-hatching", 2.0, seed=3)
    alone = denoiser_for(model, "toward-target", "ink-hatching", 2.0, seed=3)
    assert isinstance(single, DenoiserTerm) and repr(single) == repr(alone)
    pair = ensemble_denoiser([model, other], "both", "ink-hatching", 2.0, seed=3, levels=(500, 980))
    assert isinstance(pair, CombinedTerm) and [t.model for t in pair.terms] == [model, model, other, other]
    assert [t.mode for t in pair.terms] == ["away", "toward-target"] * 2
    assert [t.seed for t in pair.terms] == [3, 3, 4, 4] and {t.timestep_range for t in pair.terms} == {(500, 980)}
    assert pair.weight == 4.0  # "both" weighs each term at the weight; the models share it
    latents = torch.randn(1, model.mean.shape[1], 6, 6, requires_grad=True)
    pair.loss(latents, ("view",)).backward()
    assert latents.grad is not None and latents.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least one model"):
        ensemble_denoiser([], "away", None)
    with pytest.raises(ValueError, match="has none for 'mosaic'"):
        ensemble_denoiser([model, other], "toward-target", "mosaic")


def test_evaluate_gives_the_away_terms_figure_through_a_surrogate_and_says_when_it_is_not_asked(
    surrogate, tmp_path, capsys
) -> None:
    import json

    import numpy as np
    from PIL import Image

    from stylecloak.cli import main

    _, path = surrogate
    original = tmp_path / "wave.png"
    Image.fromarray((load_painting("hokusai_great_wave.png", 128) * 255).round().astype(np.uint8)).save(original)
    made = ["cloak", str(original), "--steps", "2", "--target", "mosaic", "--mimic-downscales", "2"]
    assert main([*made, "--surrogate", str(path)]) == 0
    cloaked = tmp_path / "wave.cloaked.png"
    assert main(["evaluate", str(original), str(cloaked), "--no-robustness", "--json", "--surrogate", str(path)]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    figure = result["surrogate_figure"]
    assert figure["made_with_it"] is True and figure["long_side"] == TINY.image_size  # the surrogate's own size
    assert isinstance(figure["relative_loss"], float) and 0.5 < figure["relative_loss"] < 2
    assert result["made_with_surrogate"] == str(path)  # as the cloaked file records it

    assert main(["evaluate", str(original), str(cloaked), "--no-robustness"]) == 0
    out = capsys.readouterr().out
    assert "none of the figures above measures" in out and str(path) in out  # the term is named, not hidden
    assert main(["evaluate", str(original), str(cloaked), "--surrogate", str(tmp_path / "missing.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "surrogate model not found" in err


def test_the_away_terms_figure_refuses_a_surrogate_of_another_latent_space(surrogate) -> None:
    model, _ = surrogate

    class FourChannels:  # an encoder of another latent space (SD's VAE has 4 channels; TAEF2 has 32)
        name = "four-channels"

        def encode(self, image: torch.Tensor) -> torch.Tensor:
            return torch.zeros(1, 4, image.shape[-2] // 8, image.shape[-1] // 8)

    image = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="latents of 32 channels and encoder 'four-channels' gives 4"):
        relative_denoising_loss(model, FourChannels(), image, image)
    # The cloak's own path meets the same check in the term, one line instead of a tensor error.
    with pytest.raises(ValueError, match="latents of 32 channels and the encoder gives 4"):
        DenoiserTerm(model, mode="away").loss(torch.zeros(1, 4, 8, 8), (2,))
