"""The mimicry attack in small: the pipeline runs end to end on tiny images with a few steps (real TAEF2)."""

from __future__ import annotations

import json

import pytest
import torch

from stylecloak.countermeasures import get_countermeasure
from stylecloak.evaluation.attack import ARTIST_LABEL, MimicryRequest, run_mimicry
from stylecloak.evaluation.classifier import StyleClassifier
from stylecloak.evaluation.mimic import (
    LatentSet,
    MimicConfig,
    _scheduler_config,
    _snr_weights,
    fine_tune_on_artist,
    generate_latents,
    latent_stats,
    resize_for_mimic,
    train_base_model,
    train_mimic,
)

TINY = MimicConfig(
    image_size=64,
    crop=32,
    base_steps=4,
    steps=3,
    batch_size=4,
    channels=(16, 32),
    attention_levels=(False, True),
    samples=3,
    sampling_steps=3,
    judge_crops_per_style=8,
)


class MeanColourJudge:
    """A stand-in StyleClassifier: nearest class mean colour (the real ones are tested in test_classifier)."""

    def __init__(self) -> None:
        self.labels: list[str] = []

    def fit(self, images, labels):
        self.labels = sorted(set(labels))
        self.centroids = torch.stack(
            [
                torch.stack([image.mean((0, 2, 3)) for image, other in zip(images, labels) if other == label]).mean(0)
                for label in self.labels
            ]
        )
        return self

    def predict_proba(self, images):
        colours = torch.stack([image.mean((0, 2, 3)) for image in images])
        return torch.softmax(-torch.cdist(colours, self.centroids), dim=1)

    def predict(self, images):
        return [self.labels[k] for k in self.predict_proba(images).argmax(dim=1).tolist()]


def _images(colour, count, seed, size=(48, 64)):
    generator = torch.Generator().manual_seed(seed)
    base = torch.tensor(colour).view(1, 3, 1, 1)
    return [(base + 0.1 * torch.rand((1, 3, *size), generator=generator)).clamp(0, 1) for _ in range(count)]


def test_training_reduces_the_loss_and_sampling_is_deterministic() -> None:
    generator = torch.Generator().manual_seed(0)
    sets = [
        LatentSet("a", [torch.randn(8, 6, 6, generator=generator) + 2]),
        LatentSet("b", [torch.randn(8, 6, 6, generator=generator)]),
    ]
    mean, std = latent_stats([z for s in sets for z in s.latents])
    config = MimicConfig(
        crop=32,
        steps=30,
        batch_size=8,
        learning_rate=2e-3,
        warmup_steps=5,
        channels=(16, 32),
        attention_levels=(False, False),
        sampling_steps=3,
    )
    mimic = train_mimic(sets, config, mean, std, torch.device("cpu"))
    assert len(mimic.losses) == 30 and sum(mimic.losses[-10:]) < sum(mimic.losses[:10])
    first = generate_latents(mimic, "a", 2, torch.device("cpu"), seed=1)
    assert first.shape == (2, 8, 4, 4) and torch.isfinite(first).all()
    assert torch.equal(first, generate_latents(mimic, "a", 2, torch.device("cpu"), seed=1))
    # Fine-tuning starts from the given model, and an empty class is kept but not trained on.
    tuned = train_mimic(
        [LatentSet("a", []), sets[1]], config, mean, std, torch.device("cpu"), start_from=mimic, steps=2
    )
    assert tuned.labels == ["a", "b"] and len(tuned.losses) == 2
    with pytest.raises(ValueError, match="snr_gamma"):
        train_mimic(sets, MimicConfig(crop=32, snr_gamma=0.0), mean, std, torch.device("cpu"), steps=1)
    with pytest.raises(ValueError, match="one weight"):
        train_mimic(sets, config, mean, std, torch.device("cpu"), steps=1, class_weights=[1.0])
    with pytest.raises(ValueError, match="same classes"):
        train_mimic([sets[1], sets[0]], config, mean, std, torch.device("cpu"), start_from=mimic, steps=1)


def test_base_then_fine_tune_is_the_attacks_recipe_in_two_steps() -> None:
    # The evaluator's attack and the artist-aware surrogate share this recipe: the base keeps an empty artist
    # class, and the fine-tuning draws the artist at artist_share and the others evenly, as train_mimic would with
    # the same weights spelled out.
    generator = torch.Generator().manual_seed(0)
    others = [LatentSet("b", [torch.randn(8, 6, 6, generator=generator)]), LatentSet("c", [torch.randn(8, 6, 6)])]
    artist = [torch.randn(8, 6, 6, generator=generator) + 1]
    mean, std = latent_stats([z for s in others for z in s.latents])
    config = MimicConfig(
        crop=32,
        base_steps=3,
        steps=2,
        batch_size=4,
        channels=(16, 32),
        attention_levels=(False, False),
        artist_share=0.4,
    )
    cpu = torch.device("cpu")
    base = train_base_model("a", others, config, mean, std, cpu)
    assert base.labels == ["a", "b", "c"] and len(base.losses) == 3
    tuned = fine_tune_on_artist(base, "a", artist, others, config, mean, std, cpu)
    by_hand = train_mimic(
        [LatentSet("a", artist), *others], config, mean, std, cpu, start_from=base, class_weights=[0.4, 0.3, 0.3]
    )
    assert tuned.labels == ["a", "b", "c"] and tuned.losses == by_hand.losses
    with pytest.raises(ValueError, match="artist_share"):
        fine_tune_on_artist(base, "a", artist, others, MimicConfig(crop=32, artist_share=0.0), mean, std, cpu)


def test_min_snr_weights_favour_the_middle_noise_levels() -> None:
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(**_scheduler_config())
    timesteps = torch.tensor([0, 500, 999])
    weights = _snr_weights(scheduler, timesteps, 5.0)
    # Nearly clean (SNR huge) and nearly pure noise (SNR near 0) both weigh little; no weight exceeds gamma/(gamma+1).
    assert weights[1] > weights[0] and weights[1] > weights[2] and bool((weights <= 5 / 6 + 1e-6).all())
    assert torch.equal(_snr_weights(scheduler, timesteps, None), torch.ones(3))


def test_attack_runs_on_clean_cloaked_and_purified_sets(encoder, tmp_path) -> None:
    clean = _images((0.8, 0.3, 0.2), 2, 0)
    cloaked = [(image + 0.02).clamp(0, 1) for image in clean]
    others = {"blue": _images((0.1, 0.2, 0.8), 2, 1), "green": _images((0.2, 0.7, 0.2), 2, 2)}
    request = MimicryRequest(
        clean, cloaked, others, MeanColourJudge(), purifiers=[get_countermeasure("jpeg75")], out_dir=tmp_path
    )
    assert isinstance(request.judge, StyleClassifier)  # the stand-in is a whole classifier, not just fit/predict
    report = run_mimicry(request, encoder, TINY)
    assert [c.condition for c in report.conditions] == ["clean", "cloaked", "cloaked+jpeg75"]
    assert report.classifier_sanity == 1.0  # the judge knows the artist's own (clean) crops
    for condition in report.conditions:
        assert condition.samples == 3 and sum(condition.predictions.values()) == 3
        assert 0.0 <= condition.protection_success_rate <= 1.0
        low, high = condition.rate_interval  # 3 verdicts allow little: a wide interval around the rate
        assert low <= condition.protection_success_rate <= high and high - low > 0.5
        assert (tmp_path / f"samples_{condition.condition}.png").is_file()
    # The judge's control: the clean mimic's images of each other style, and how many it calls the artist's.
    assert set(report.control_predictions) == {"blue", "green"}
    assert sum(sum(v.values()) for v in report.control_predictions.values()) == 4  # 3 samples over 2 styles, rounded up
    assert report.control_artist_rate is not None and 0.0 <= report.control_artist_rate <= 1.0
    assert (tmp_path / "control_blue.png").is_file()
    # Each condition names the exact pixels it trained on (at the mimic's size), and the report the machine.
    from stylecloak.evaluation._provenance import images_digest

    digests = [condition.training_digest for condition in report.conditions]
    assert digests[0] == images_digest([resize_for_mimic(image, TINY.image_size) for image in clean])
    assert len(set(digests)) == 3  # clean, cloaked and cloaked after JPEG are three different training sets
    assert report.environment["threads"] == torch.get_num_threads() and report.environment["torch"]
    json.dumps(report.to_dict())  # the report is plain data
    from stylecloak.evaluation.mimicry_run import mimicry_summary

    summary = mimicry_summary(report, {"out": str(tmp_path), "seconds": 1.0})
    low, high = report.conditions[0].rate_interval
    assert "95% interval" in summary and f"{low:.0%}-{high:.0%}" in summary


def test_an_images_digest_changes_with_one_level_of_one_pixel_and_with_the_order() -> None:
    from stylecloak.evaluation._provenance import images_digest

    images = _images((0.5, 0.5, 0.5), 2, 0)
    nudged = [image.clone() for image in images]
    nudged[1][0, 2, 5, 7] += 1 / 255
    assert images_digest(images) == images_digest([image.clone() for image in images])
    assert images_digest(images) != images_digest(nudged)
    assert images_digest(images) != images_digest(images[::-1])
    assert len(images_digest(images)) == 16 and images_digest([]) != images_digest(images)


def test_the_rates_interval_is_wilsons_and_stays_within_zero_and_one() -> None:
    from stylecloak.evaluation._intervals import wilson_interval

    # 0 of 48 is not "exactly 0": up to 7.4% fits the count; 38 of 48 (0.79) spans 0.66 to 0.88.
    assert wilson_interval(0, 48) == pytest.approx((0.0, 0.0741), abs=1e-4)
    assert wilson_interval(38, 48) == pytest.approx((0.6574, 0.8827), abs=1e-4)  # worked by hand
    low, high = wilson_interval(48, 48)
    assert high == 1.0 and 0.92 < low < 0.93
    for bad in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


def test_a_second_judge_is_trained_checked_and_asked_beside_the_first(encoder) -> None:
    clean = _images((0.8, 0.3, 0.2), 2, 0)
    cloaked = [(image + 0.02).clamp(0, 1) for image in clean]
    others = {"blue": _images((0.1, 0.2, 0.8), 2, 1), "green": _images((0.2, 0.7, 0.2), 2, 2)}
    request = MimicryRequest(clean, cloaked, others, MeanColourJudge(), second_judge=MeanColourJudge())
    request.second_judge_name = "mean-colour"
    report = run_mimicry(request, encoder, TINY)
    second = report.to_dict()["second_judge"]
    assert second["name"] == "mean-colour" and second["sanity"] == 1.0
    assert 0.0 <= second["control_artist_rate"] <= 1.0 and set(second["control_predictions"]) == {"blue", "green"}
    for condition in report.conditions:  # the same samples, the same kind of judge: the same verdicts
        assert condition.second_opinion["protection_success_rate"] == condition.protection_success_rate
        # The mean P(artist) agrees with the verdicts' direction: a set filed all under the artist has it high.
        assert condition.artist_probability is not None and 0.0 <= condition.artist_probability <= 1.0
        if condition.protection_success_rate == 0.0:
            assert condition.artist_probability > 1 / 3  # three classes: the artist beat both others every time


def test_more_cloaked_sets_are_conditions_of_their_own_with_safe_file_names(encoder) -> None:
    from stylecloak.evaluation.attack import attack_conditions, samples_file_name

    clean = _images((0.8, 0.3, 0.2), 2, 0)
    cloaked = [(image + 0.02).clamp(0, 1) for image in clean]
    stronger = [(image + 0.05).clamp(0, 1) for image in clean]
    request = MimicryRequest(clean, cloaked, {}, MeanColourJudge(), more_cloaked={"high": stronger})
    names = [name for name, _ in attack_conditions(request, clean, cloaked, encoder)]
    assert names == ["clean", "cloaked", "cloaked:high"]
    assert samples_file_name("cloaked:high") == "samples_cloaked-high.png"
    assert samples_file_name("cloaked+jpeg75") == "samples_cloaked+jpeg75.png"


def test_rendition_classes_are_the_other_styles_works_in_each_target_style() -> None:
    from stylecloak.evaluation.attack import rendition_classes
    from stylecloak.targets import get_target

    others = {"blue": _images((0.1, 0.2, 0.8), 2, 1), "green": _images((0.2, 0.7, 0.2), 1, 2)}
    classes = rendition_classes(others, [get_target("woodcut"), get_target("mosaic")])
    assert list(classes) == ["rendition:woodcut", "rendition:mosaic"]
    assert all(len(images) == 3 for images in classes.values())  # every other work, and only those
    assert all(image.shape == others["blue"][0].shape for image in classes["rendition:woodcut"])


def test_purified_clean_art_is_the_control_of_each_purification(encoder) -> None:
    from stylecloak.evaluation.attack import attack_conditions

    clean = _images((0.8, 0.3, 0.2), 2, 0)
    cloaked = [(image + 0.02).clamp(0, 1) for image in clean]
    jpeg = get_countermeasure("jpeg75")
    request = MimicryRequest(clean, cloaked, {}, MeanColourJudge(), purifiers=[jpeg], purify_clean=True)
    conditions = dict(attack_conditions(request, clean, cloaked, encoder))
    assert list(conditions) == ["clean", "cloaked", "cloaked+jpeg75", "clean+jpeg75"]
    # The control is the clean art through the very same purification, not the cloaked art again.
    assert torch.equal(conditions["clean+jpeg75"][0], jpeg.apply(clean[0], encoder))
    assert not torch.equal(conditions["clean+jpeg75"][0], conditions["cloaked+jpeg75"][0])
    without = MimicryRequest(clean, cloaked, {}, MeanColourJudge(), purifiers=[jpeg])
    assert [name for name, _ in attack_conditions(without, clean, cloaked, encoder)] == [
        "clean",
        "cloaked",
        "cloaked+jpeg75",
    ]
    with pytest.raises(ValueError, match="encoder"):
        attack_conditions(request, clean, cloaked, None)


def test_class_weights_set_each_class_share_of_a_batch() -> None:
    from stylecloak.evaluation.mimic import _random_crops

    sets = [
        LatentSet("artist", [torch.zeros(4, 6, 6)]),
        LatentSet("b", [torch.ones(4, 6, 6)]),
        LatentSet("c", [torch.ones(4, 6, 6)]),
    ]
    _, classes = _random_crops(sets, 4, 2000, torch.Generator().manual_seed(0), [0.5, 0.25, 0.25])
    assert abs(float((classes == 0).float().mean()) - 0.5) < 0.05
    _, classes = _random_crops(sets, 4, 200, torch.Generator().manual_seed(0), [1.0, 0.0, 0.0])
    assert bool((classes == 0).all())  # a class of weight 0 is never drawn
    _, classes = _random_crops([LatentSet("artist", []), *sets[1:]], 4, 200, torch.Generator().manual_seed(0))
    assert set(classes.tolist()) == {1, 2}  # an empty class is never drawn


def test_attack_refuses_what_it_cannot_measure(encoder) -> None:
    clean = _images((0.8, 0.3, 0.2), 1, 0)
    with pytest.raises(ValueError, match="other styles"):
        run_mimicry(MimicryRequest(clean, clean, {}, MeanColourJudge()), encoder, TINY)
    with pytest.raises(ValueError, match="smaller than"):
        others = {"b": _images((0, 0, 1), 1, 1, size=(16, 16))}
        run_mimicry(MimicryRequest(clean, clean, others, MeanColourJudge()), encoder, TINY)
    with pytest.raises(ValueError, match="reserved"):
        run_mimicry(MimicryRequest(clean, clean, {ARTIST_LABEL: clean}, MeanColourJudge()), encoder, TINY)


def _write_pngs(folder, images, names):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names):
        pixels = (image[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        Image.fromarray(pixels).save(folder / name)


def test_command_writes_a_report_and_reports_bad_input(tmp_path, monkeypatch, capsys) -> None:
    """`stylecloak mimic` end to end on tiny folders (the preset shrunk to TINY), then its one-line errors."""
    from stylecloak.cli import main
    from stylecloak.evaluation import mimic

    monkeypatch.setitem(mimic.MIMIC_PRESETS, "quick", TINY)
    clean = _images((0.8, 0.3, 0.2), 2, 0)
    _write_pngs(tmp_path / "clean", clean, ["a.png", "b.png"])
    _write_pngs(
        tmp_path / "cloaked", [(image + 0.02).clamp(0, 1) for image in clean], ["a.cloaked.png", "b.cloaked.png"]
    )
    (tmp_path / "cloaked" / "broken.png").write_bytes(b"not an image")
    others = tmp_path / "others"
    _write_pngs(others / "blue", _images((0.1, 0.2, 0.8), 2, 1), ["x.png", "y.png"])
    _write_pngs(others / "green", _images((0.2, 0.7, 0.2), 2, 2), ["x.png", "y.png"])
    _write_pngs(others / "green", clean[:1], ["a.png"])  # the artist's own file, left out by name
    out = tmp_path / "result"
    argv = [
        "mimic",
        "--clean",
        str(tmp_path / "clean"),
        "--cloaked",
        str(tmp_path / "cloaked"),
        "--others",
        str(others),
        "--purify",
        "jpeg75",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--json",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "broken.png" in captured.err  # reported and skipped, the run goes on
    assert report["other_styles"] == {"blue": 2, "green": 2} and report["artist_images"] == 2
    assert [c["condition"] for c in report["conditions"]] == ["clean", "cloaked", "cloaked+jpeg75"]
    assert json.loads((out / "report.json").read_text())["conditions"] == report["conditions"]
    assert (out / "samples_cloaked.png").is_file()

    for bad, needle in (
        (["--purify", "nosuch"], "nosuch"),
        (["--image-size", "16"], "--image-size"),
        (["--others", str(tmp_path / "missing")], "missing"),
    ):
        assert main(argv[:-1] + bad) == 2
        lines = capsys.readouterr().err.strip().splitlines()  # the broken file's line may come first
        assert needle in lines[-1] and all(line.startswith("stylecloak: ") for line in lines), lines


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_presets_build_a_working_model(preset) -> None:
    """Each preset's UNet takes a batch of its own latent crops (the full one is never trained here: it wants a GPU)."""
    from stylecloak.evaluation.mimic import MIMIC_PRESETS, _unet

    config = MIMIC_PRESETS[preset]
    unet = _unet(config, latent_channels=32, classes=3)
    size = config.crop // 8
    with torch.no_grad():
        out = unet(torch.randn(2, 32, size, size), torch.tensor([10, 900]), class_labels=torch.tensor([0, 3])).sample
    assert out.shape == (2, 32, size, size) and torch.isfinite(out).all()
    assert config.image_size >= config.crop and len(config.channels) == len(config.attention_levels)


def test_style_transfer_attack_uses_what_the_encoder_sees(encoder, tmp_path) -> None:
    """--attack nst: the artist's style, as D(E(x)) shows it, transferred onto the other styles' works."""
    from stylecloak.evaluation.nst_mimic import NSTMimicConfig, run_nst_mimicry

    clean = _images((0.8, 0.3, 0.2), 2, 0)
    cloaked = [(image + 0.02).clamp(0, 1) for image in clean]
    others = {"blue": _images((0.1, 0.2, 0.8), 2, 1), "green": _images((0.2, 0.7, 0.2), 2, 2)}
    config = NSTMimicConfig(samples=3, steps=15, image_size=32)
    request = MimicryRequest(
        clean, cloaked, others, MeanColourJudge(), purifiers=[get_countermeasure("jpeg75")], out_dir=tmp_path
    )
    report = run_nst_mimicry(request, encoder, config)
    assert report.to_dict()["config"]["attack"] == "nst"
    assert [c.condition for c in report.conditions] == ["clean", "cloaked", "cloaked+jpeg75"]
    for condition in report.conditions:
        assert condition.samples == 3 and (tmp_path / f"samples_{condition.condition}.png").is_file()
    # The transfer carries the artist's (red) palette onto the blue and green works.
    import numpy as np
    from PIL import Image

    samples = np.asarray(Image.open(tmp_path / "samples_clean.png").convert("RGB"), dtype=np.float32) / 255
    contents = torch.cat([others["blue"][0], others["green"][0]]).mean(dim=(0, 2, 3))
    assert samples[..., 0].mean() > float(contents[0]) + 0.1
    # The control: blue's style onto green's works and green's onto blue's (2 each, as many as the artist's 3
    # in all); the colour judge never calls them red, the artist's.
    assert report.control_artist_rate == 0.0
    assert {style: sum(verdicts.values()) for style, verdicts in report.control_predictions.items()} == {
        "blue": 2,
        "green": 2,
    }
    assert (tmp_path / "control_blue.png").is_file() and (tmp_path / "control_green.png").is_file()


def test_style_transfer_attack_judge_learns_the_rendition_classes(encoder, tmp_path) -> None:
    """--judge-renditions with --attack nst: the judge learns the extra classes too (it once ignored them, so
    that "a different style" had no name in that attack's verdicts)."""
    from stylecloak.evaluation.nst_mimic import NSTMimicConfig, run_nst_mimicry

    clean = _images((0.8, 0.3, 0.2), 2, 0)
    others = {"blue": _images((0.1, 0.2, 0.8), 2, 1), "green": _images((0.2, 0.7, 0.2), 2, 2)}
    judge, second = MeanColourJudge(), MeanColourJudge()
    request = MimicryRequest(
        clean,
        clean,
        others,
        judge,
        purifiers=[],
        out_dir=tmp_path,
        second_judge=second,
        judge_extra_classes={"grey renditions": _images((0.5, 0.5, 0.5), 2, 3)},
    )
    run_nst_mimicry(request, encoder, NSTMimicConfig(samples=1, steps=2, image_size=32))
    assert judge.labels == second.labels == ["artist", "blue", "green", "grey renditions"]


def test_style_source_progress_measures_what_style_transfer_copies(encoder) -> None:
    """`evaluate`'s style_transfer_progress on a real painting with TAEF2 and VGG16: 0 unmoved, 1 at the
    target, further the further a pixel blend goes; one line for an encoder without decoder."""
    from stylecloak.evaluation.nst_mimic import style_source_progress
    from stylecloak.models.lpips import load_vgg16_features

    from .conftest import load_painting
    from .test_large_images import SmallLocalEncoder  # random weights, and no decoder

    vgg = load_vgg16_features()
    original = torch.from_numpy(load_painting("hokusai_great_wave.png", 192)).permute(2, 0, 1)[None]
    target = original.flip(1)  # the channels reversed: other colour statistics, the same layout

    def progress(blend: float) -> float:  # shrunk to the attack's 128 px inside, as the transfer takes it
        return style_source_progress(encoder, vgg, original, original + blend * (target - original), target)

    assert progress(0.0) == 0.0 and progress(1.0) == pytest.approx(1.0, abs=1e-6)
    # Gram statistics are far from linear in the pixels (a 30% blend moves them 0.04 of the way, 90% 0.86), but
    # a further blend moves them further.
    weak, middle, strong = progress(0.3), progress(0.6), progress(0.9)
    assert 0 < weak < middle < strong < 1
    with pytest.raises(ValueError, match="has no decoder"):
        style_source_progress(SmallLocalEncoder(), vgg, original, original, target)


def test_pooled_style_source_progress_counts_the_work_a_median_hides(encoder) -> None:
    """The set's figure as the transfer pools it (the works' mean style features): one work is the
    single-work figure; a work left unmoved pulls the set's figure down, where the median of two moved works
    and one unmoved one would not; an empty set is one line."""
    from stylecloak.evaluation.nst_mimic import pooled_style_source_progress, style_source_progress
    from stylecloak.models.lpips import load_vgg16_features

    from .conftest import load_painting

    vgg = load_vgg16_features()
    works = []
    for name in ("hokusai_great_wave.png", "hokusai_poppies.png", "hokusai_ryogoku_bridge.png"):
        original = torch.from_numpy(load_painting(name, 160)).permute(2, 0, 1)[None]
        target = original.flip(1)
        works.append((original, original + 0.8 * (target - original), target))
    single = style_source_progress(encoder, vgg, *works[0])
    assert pooled_style_source_progress(encoder, vgg, works[:1]) == pytest.approx(single, abs=1e-6)
    moved = pooled_style_source_progress(encoder, vgg, works)
    original, _, target = works[2]
    held_back = pooled_style_source_progress(encoder, vgg, [*works[:2], (original, original, target)])
    assert 0 < held_back < moved - 0.1
    with pytest.raises(ValueError, match="no works"):
        pooled_style_source_progress(encoder, vgg, [])


def test_pooled_style_artist_probability_reads_the_judges_artist_class(encoder) -> None:
    """The judge's P(artist) of a set's pooled style: higher for the artist's own works than for another
    style's works put in their place; a judge without an artist class reads 0; an empty set is one line."""
    from stylecloak.evaluation.mimicry_run import gram_judge
    from stylecloak.evaluation.nst_mimic import pooled_style_artist_probability

    from .conftest import load_painting

    def paintings(*names: str) -> list[torch.Tensor]:
        return [torch.from_numpy(load_painting(name, 128)).permute(2, 0, 1)[None] for name in names]

    artist = paintings("hokusai_great_wave.png", "hokusai_poppies.png", "hokusai_ryogoku_bridge.png")
    renaissance = paintings("durer_lion.png", "bruegel_harvesters.png", "bellini_pala_di_pesaro.png")
    impressionism = paintings("renoir_moulin_de_la_galette.png", "cassatt_summertime.png")
    judge, _ = gram_judge("linear", torch.device("cpu"))
    judge.fit(
        [*artist, *renaissance, *impressionism],
        [ARTIST_LABEL] * 3 + ["renaissance"] * 3 + ["impressionism"] * 2,
    )
    own = pooled_style_artist_probability(encoder, judge, artist)
    other = pooled_style_artist_probability(encoder, judge, renaissance)
    assert 0 <= other < own - 0.2 <= 1
    no_artist, _ = gram_judge("linear", torch.device("cpu"))
    no_artist.fit([*renaissance, *impressionism], ["renaissance"] * 3 + ["impressionism"] * 2)
    assert pooled_style_artist_probability(encoder, no_artist, artist) == 0.0
    with pytest.raises(ValueError, match="no works"):
        pooled_style_artist_probability(encoder, judge, [])
