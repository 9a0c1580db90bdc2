"""The local visibility guarantee: JND box, SSIM windows, PSNR and the final check, on real TAEF2 and LPIPS."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from stylecloak.imaging import image_to_tensor, load_image, quantize_rgb, save_image, tensor_to_image
from stylecloak.metrics import (
    SSIM_REPORT_WINDOW,
    ssim,
    ssim_and_map,
    ssim_map,
    ssim_window_min,
    window_means,
    window_starts,
)
from stylecloak.optimize import OptimizerConfig, optimize_cloak, quantize_8bit
from stylecloak.settings import INTENSITY_PRESETS, CloakSettings
from stylecloak.targets import get_target
from stylecloak.visibility import (
    VisibilityBoundError,
    VisibilityBounds,
    allowed_change,
    change_heatmap,
    enforce_bounds,
    jnd_threshold,
    measure_visibility,
    worst_window,
)

from .conftest import load_painting


def flat_beside_busy(height: int = 128, width: int = 256, seed: int = 0) -> torch.Tensor:
    """Left half: flat light paper (one grey level); right half: busy random brush-stroke texture."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.full((1, 3, height, width), 200 / 255)
    strokes = torch.rand(1, 3, height // 4, width // 8, generator=generator)
    strokes = torch.nn.functional.interpolate(strokes, size=(height, width // 2), mode="nearest")
    image[..., width // 2 :] = 0.2 + 0.6 * strokes + 0.1 * torch.rand(1, 3, height, width // 2, generator=generator)
    return quantize_8bit(image)


# ------------------------------------------------------------------------------------------------ the metrics


def test_window_starts_cover_the_length_and_end_flush() -> None:
    assert window_starts(100, 64, 32) == [0, 32, 36]
    assert window_starts(64, 64, 32) == [0]
    assert window_starts(40, 64, 32) == [0]


def test_window_means_are_exact_box_means() -> None:
    values = torch.arange(100 * 90, dtype=torch.float32).reshape(100, 90)
    means = window_means(values, window=64)
    assert means.shape == (3, 2)
    assert float(means[0, 0]) == pytest.approx(float(values[:64, :64].mean()), rel=1e-6)
    assert float(means[-1, -1]) == pytest.approx(float(values[-64:, -64:].mean()), rel=1e-6)


def test_ssim_window_min_finds_a_local_damage_that_the_mean_hides() -> None:
    image = quantize_8bit(torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 0.2 + 0.5)
    damaged = image.clone()
    damaged[..., 100:164, 100:164] = quantize_8bit(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)))
    assert ssim_window_min(image, image) == pytest.approx(1.0, abs=1e-6)
    mean, worst = ssim(image, damaged), ssim_window_min(image, damaged)
    assert mean > 0.85 and worst < 0.3
    assert float(ssim_map(image, damaged).mean()) == pytest.approx(mean, abs=1e-5)
    one_pass_mean, one_pass_map = ssim_and_map(image, damaged)
    assert one_pass_mean == mean and torch.equal(one_pass_map, ssim_map(image, damaged))
    top, left = worst_window(image, damaged)
    assert abs(top - 100) <= 32 and abs(left - 100) <= 32


def test_measure_visibility_reports_every_figure(lpips_alex) -> None:
    image = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 128)))
    noisy = quantize_8bit(image + 3 / 255 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0)))
    figures = measure_visibility(lpips_alex, image, noisy)
    assert 0 < figures.lpips < 0.2 and 0.5 < figures.ssim_window_min <= figures.ssim < 1
    assert figures.psnr is not None and 30 < figures.psnr < 45 and 5 <= figures.max_change <= 20
    same = measure_visibility(lpips_alex, image, image)
    assert same.psnr is None and same.max_change == 0 and same.ssim == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------------- the JND


def test_jnd_allows_little_on_flat_paper_and_more_on_busy_strokes() -> None:
    image = flat_beside_busy()
    threshold = jnd_threshold(image)[0, 0]
    flat, busy = threshold[8:-8, 8:120], threshold[8:-8, 136:-8]
    assert float(flat.max()) < 5 and float(busy.median()) > 2 * float(flat.max())
    box = allowed_change(image, VisibilityBounds()) * 255
    assert torch.equal(box, box.round())  # whole 8-bit levels
    assert float(box.min()) >= 1 and float(box.max()) <= VisibilityBounds().max_change


def test_every_preset_defines_every_bound_and_settings_carry_them() -> None:
    for name, preset in INTENSITY_PRESETS.items():
        settings = CloakSettings.from_presets(name)  # type: ignore[arg-type]
        assert settings.bounds == VisibilityBounds(
            preset.budget,
            preset.ssim_min,
            preset.ssim_window_min,
            preset.psnr_min,
            preset.jnd_strength,
            preset.max_change,
        )
    low, medium, high = (INTENSITY_PRESETS[n] for n in ("low", "medium", "high"))
    assert low.budget < medium.budget < high.budget and low.ssim_min > medium.ssim_min > high.ssim_min
    with pytest.raises(ValueError, match="ssim_window_min"):
        CloakSettings(ssim_window_min=1.5)
    assert CloakSettings.from_presets("medium", psnr_min=35.0).bounds.psnr_min == 35.0


# ------------------------------------------------------------------------------------------ the optimiser


@pytest.fixture(scope="module")
def flat_busy_outcome(encoder, lpips_alex):
    original = flat_beside_busy()
    target = get_target("ink-hatching").render(original, seed=0)
    # At full size alone, so that the full-size progress shows the cloak did move (the box is the same with the
    # default's shrunk views, which have their own test below).
    config = OptimizerConfig(steps=6, learning_rate=0.02, seed=1, budget_margin=0.9, mimic_downscales=())
    return original, config, optimize_cloak(original, target, encoder, lpips_alex, config)


def test_the_flat_region_changes_no_more_than_the_mask_allows(flat_busy_outcome) -> None:
    original, config, outcome = flat_busy_outcome
    change = (outcome.cloaked - original).abs().amax(dim=1, keepdim=True)
    box = allowed_change(original, config.bounds)
    assert bool((change <= box + 1e-6).all())
    flat_change = change[..., 8:-8, 8:120] * 255
    assert float(flat_change.max()) <= float(box[..., 8:-8, 8:120].max() * 255) < 5
    busy_change = change[..., 8:-8, 136:-8] * 255
    assert float(busy_change.max()) > float(flat_change.max())  # the cloak goes where it can hide
    assert outcome.target_progress > 0.05


def test_a_large_image_over_two_tiles_keeps_every_bound(encoder, lpips_alex, tmp_path) -> None:
    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 320)))
    target = get_target("ink-hatching").render(original, seed=0)
    config = OptimizerConfig(steps=4, learning_rate=0.02, tile_size=128)  # 3x2 tiles
    outcome = optimize_cloak(original, target, encoder, lpips_alex, config)
    path = save_image(tmp_path / "cloaked.png", quantize_rgb(tensor_to_image(outcome.cloaked)))
    saved = image_to_tensor(load_image(path).rgb)
    figures = measure_visibility(lpips_alex, original, saved)
    assert figures.violations(config.bounds) == []
    assert figures == outcome.visibility
    box = allowed_change(original, config.bounds)
    assert bool(((saved - original).abs() <= box + 1e-6).all())
    assert outcome.target_progress > 0.1


def test_an_unreachable_bound_is_reported_not_exceeded(encoder, lpips_alex) -> None:
    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 96)))
    target = get_target("ink-hatching").render(original, seed=0)
    config = dataclasses.replace(OptimizerConfig(steps=2, learning_rate=0.05), psnr_min=99.0)
    with pytest.raises(VisibilityBoundError, match="psnr"):
        optimize_cloak(original, target, encoder, lpips_alex, config)


def test_enforce_bounds_scales_down_and_names_the_binding_bound(lpips_alex) -> None:
    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 128)))
    delta = 12 / 255 * torch.sign(torch.randn(original.shape, generator=torch.Generator().manual_seed(0)))
    bounds = VisibilityBounds(
        lpips=0.5, ssim_min=0.0, ssim_window_min=0.0, psnr_min=35.0, jnd_strength=0, max_change=255
    )
    enforced = enforce_bounds(original, delta, lpips_alex, bounds)
    assert enforced.limited_by == ["psnr"] and 0.05 < enforced.scale < 1
    assert enforced.figures.psnr is not None and enforced.figures.psnr >= 35.0
    assert enforced.figures == measure_visibility(lpips_alex, original, enforced.image)


def test_heatmap_is_an_image_of_the_same_size_and_brightest_where_the_change_is() -> None:
    image = quantize_8bit(torch.full((1, 3, 128, 160), 0.5))
    changed = image.clone()
    changed[..., 40:90, 90:150] = quantize_8bit(torch.rand(1, 3, 50, 60, generator=torch.Generator().manual_seed(0)))
    heat = change_heatmap(image, changed)
    assert heat.shape == (128, 160, 3) and heat.dtype == np.uint8
    brightness = heat.astype(float).sum(axis=2)
    assert brightness[55:75, 105:135].mean() > 3 * brightness[5:30, 5:60].mean()
    assert SSIM_REPORT_WINDOW == 64


def test_optimising_where_the_mimic_looks_moves_the_shrunk_image_further(encoder, lpips_alex) -> None:
    from stylecloak.metrics import progress_by_scale

    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 256)))
    target = get_target("ink-hatching").render(original, seed=0)
    plain = optimize_cloak(
        original, target, encoder, lpips_alex, OptimizerConfig(steps=6, learning_rate=0.02, mimic_downscales=())
    )
    shrunk = optimize_cloak(
        original, target, encoder, lpips_alex, OptimizerConfig(steps=6, learning_rate=0.02, mimic_downscales=(2,))
    )
    assert shrunk.visibility is not None and shrunk.visibility.violations(OptimizerConfig().bounds) == []
    at_half = [progress_by_scale(encoder, original, o.cloaked, target, factors=(2,))["2x"] for o in (plain, shrunk)]
    assert at_half[1] > at_half[0] + 0.05
    # A factor need not be whole (a mimic shrinks by whatever its training size asks): 256 px shrunk 2.5x.
    between = optimize_cloak(
        original, target, encoder, lpips_alex, OptimizerConfig(steps=6, learning_rate=0.02, mimic_downscales=(2.5,))
    )
    at_2_5 = [progress_by_scale(encoder, original, o.cloaked, target, factors=(2.5,))["2.5x"] for o in (plain, between)]
    assert at_2_5[1] > at_2_5[0] + 0.05


def test_a_cloak_aimed_at_training_sizes_is_the_cloak_aimed_at_the_factors_they_give(encoder, lpips_alex) -> None:
    from stylecloak.pipeline import Cloaker

    # A mimic that trains at 64 px (long side) shrinks a 160 px posting 2.5x and a 128 px one 2x. The cloaker
    # aims each at its own factor (and draws the target at it), bit for bit as the fixed factor does.
    sizes = CloakSettings(
        steps=1, mimic_sizes=(64,), mimic_size_of="long-side", target="ink-hatching", target_at_mimic_size=True
    )
    by_sizes = Cloaker(sizes, encoder=encoder, perceptual=lpips_alex, cache_targets=False)
    assert by_sizes.optimizer_config((128, 90)).mimic_downscales == (2,)
    assert by_sizes.optimizer_config((110, 160)).mimic_downscales == (2.5,)
    rgb = load_painting("hokusai_great_wave.png", 160)
    fixed = dataclasses.replace(sizes, mimic_sizes=(), mimic_downscales=(2.5,))
    by_factor = Cloaker(fixed, encoder=encoder, perceptual=lpips_alex, cache_targets=False)
    assert np.array_equal(by_sizes.cloak_rgb(rgb)[0], by_factor.cloak_rgb(rgb)[0])


def test_the_optimiser_works_only_at_shrunk_sizes_that_reports_measure() -> None:
    from stylecloak.metrics import mimic_view_factors

    assert mimic_view_factors((2, 4), (512, 384)) == [2, 4]
    assert mimic_view_factors((2, 4), (100, 300)) == [2]  # 25 px at 1/4: too small to say anything
    assert mimic_view_factors((1, 2, 4), (48, 48)) == []  # a thumbnail: the full size alone
    assert mimic_view_factors((), (512, 512)) == []
    assert mimic_view_factors((2.5, 3), (512, 384)) == [2.5, 3]


def test_jittered_mimic_resizes_stay_near_their_factor_off_the_grid_and_repeat_with_the_seed(encoder) -> None:
    from stylecloak.optimize import _ShrunkView

    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 128)))
    target = get_target("ink-hatching").render(original, seed=0)

    def draws(seed: int) -> list[tuple[float, tuple[int, int]]]:
        view = _ShrunkView(encoder, original, target, 2, 512, torch.Generator().manual_seed(seed))
        seen = []
        for _ in range(12):
            view.draw()
            seen.append((view._now[0].factor, view._now[0].offset))
        return seen

    seen = draws(0)
    assert all(2 / 2**0.5 <= factor <= 2 * 2**0.5 for factor, _ in seen)
    cell = encoder.downscale * 2 * 2**0.5  # one latent cell of the shrunk image at the largest factor, in full px
    assert all(0 <= top < cell and 0 <= left < cell for _, (top, left) in seen)
    assert len({factor for factor, _ in seen}) == 12 and len({offset for _, offset in seen}) > 6
    assert draws(0) == seen and draws(1) != seen
    fixed = _ShrunkView(encoder, original, target, 2, 512)
    fixed.draw()  # without jitter the resize never changes
    assert fixed._now[0].factor == 2.0 and fixed._now[0].offset == (0, 0)


def test_noisy_views_draw_seeded_noise_within_their_sigma_and_leave_the_image_untouched(encoder) -> None:
    from stylecloak.optimize import _ShrunkView

    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 128)))
    target = get_target("ink-hatching").render(original, seed=0)

    def noises(seed: int) -> list[torch.Tensor]:
        view = _ShrunkView(
            encoder, original, target, 2, 512, noise=8.0, noise_generator=torch.Generator().manual_seed(seed)
        )
        return [view._noise(original) for _ in range(8)]

    drawn = noises(0)
    sigmas = [float(n.std()) * 255 for n in drawn]
    assert all(0 <= s <= 8.5 for s in sigmas) and max(sigmas) - min(sigmas) > 1  # a sigma drawn in [0, 8] each step
    assert all(torch.equal(a, b) for a, b in zip(noises(0), drawn, strict=True))
    assert not torch.equal(noises(1)[0], drawn[0])
    assert _ShrunkView(encoder, original, target, 2, 512)._noise(original) == 0.0  # no noise unless asked
    with pytest.raises(ValueError, match="seeded generator"):
        _ShrunkView(encoder, original, target, 2, 512, noise=8.0)
    with pytest.raises(ValueError, match="view_noise must be between 0 and 64"):
        CloakSettings(view_noise=-1)


def test_the_decoded_view_objective_moves_what_the_decoder_renders_at_the_mimic_size(encoder, lpips_alex) -> None:
    # The latent objective can move the latents in directions the decoder ignores; a latent mimic reproduces
    # only what the decoder renders, which the "decoded" objective optimises (docs/protection.md).
    from stylecloak.countermeasures import downscale
    from stylecloak.metrics import decoded_target_progress

    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 256)))
    target = get_target("ink-hatching").render(original, seed=0)
    outcomes = [
        optimize_cloak(
            original,
            target,
            encoder,
            lpips_alex,
            OptimizerConfig(
                steps=6, learning_rate=0.02, mimic_downscales=(2,), view_objective=objective, full_size_weight=weight
            ),
        )
        for objective, weight in (("latent", 1.0), ("decoded", 1.0), ("decoded", 0.0))
    ]
    for outcome in outcomes:
        assert outcome.visibility is not None and outcome.visibility.violations(OptimizerConfig().bounds) == []
    small_original, small_target = downscale(original, 2), downscale(target, 2)
    decoded = [
        decoded_target_progress(encoder, small_original, downscale(o.cloaked, 2), small_target) for o in outcomes
    ]
    assert decoded[1] > decoded[0] + 0.05
    # Without the full size in the loss, the same bounds buy more where the mimic looks, and less at full size.
    assert decoded[2] > decoded[1] + 0.02 and outcomes[2].target_progress < outcomes[1].target_progress
    assert decoded_target_progress(encoder, small_original, small_original, small_target) == 0.0
    assert decoded_target_progress(encoder, small_original, small_target, small_target) == pytest.approx(1.0)


def test_the_perceptual_decoded_objective_moves_the_decoders_image_by_lpips(encoder, lpips_alex) -> None:
    # "decoded-lpips" compares the decoder's images by LPIPS: within the bounds it closes much of the LPIPS gap
    # between the decoder's image of the shrunk art and of the shrunk target (docs/protection.md).
    from stylecloak.countermeasures import downscale

    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 128)))
    target = get_target("ink-hatching").render(original, seed=0)
    config = OptimizerConfig(
        steps=6, learning_rate=0.02, mimic_downscales=(2,), view_objective="decoded-lpips", full_size_weight=0.0
    )
    outcome = optimize_cloak(original, target, encoder, lpips_alex, config)
    assert outcome.visibility is not None and outcome.visibility.violations(config.bounds) == []
    with torch.no_grad():
        seen = [encoder.decode(encoder.encode(downscale(x, 2))) for x in (original, outcome.cloaked, target)]
        before, after = (float(lpips_alex(x, seen[2], normalize=True).sum()) for x in seen[:2])
    assert after < 0.8 * before


def test_the_gram_decoded_objective_moves_the_style_statistics_of_the_decoders_image(encoder, lpips_alex) -> None:
    # "decoded-gram" compares the Gram statistics of the decoder's images (the perceptual metric's features,
    # wherever things are): within the bounds it moves those of the shrunk art toward the shrunk target's, and
    # further than the pixel-wise "decoded" objective does (docs/protection.md).
    from stylecloak.countermeasures import downscale
    from stylecloak.metrics import decoded_gram_progress

    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 128)))
    target = get_target("ink-hatching").render(original, seed=0)
    progress = {}
    for objective in ("decoded", "decoded-gram"):
        config = OptimizerConfig(
            steps=6, learning_rate=0.02, mimic_downscales=(2,), view_objective=objective, full_size_weight=0.0
        )
        outcome = optimize_cloak(original, target, encoder, lpips_alex, config)
        assert outcome.visibility is not None and outcome.visibility.violations(config.bounds) == []
        small = [downscale(x, 2) for x in (original, outcome.cloaked, target)]
        progress[objective] = decoded_gram_progress(encoder, lpips_alex, *small, layers=config.view_gram_layers)
    assert progress["decoded-gram"] > 0.05 and progress["decoded-gram"] > progress["decoded"]
    small_original, small_target = downscale(original, 2), downscale(target, 2)
    assert decoded_gram_progress(encoder, lpips_alex, small_original, small_original, small_target) == 0.0
    assert decoded_gram_progress(encoder, lpips_alex, small_original, small_target, small_target) == pytest.approx(1.0)


def test_the_gram_objective_compares_the_first_layers_it_is_given(lpips_alex) -> None:
    # view_gram_layers reaches the optimiser, and the statistics are those of the network's first layers alone
    # (AlexNet's five taps have 64, 192, 384, 256 and 256 channels).
    from stylecloak.metrics import perceptual_grams

    image = image_to_tensor(load_painting("hokusai_great_wave.png", 64))
    settings = CloakSettings(mimic_downscales=(2,), view_objective="decoded-gram", view_gram_layers=3)
    assert OptimizerConfig.from_settings(settings).view_gram_layers == 3
    assert CloakSettings().view_gram_layers == 2
    everything = perceptual_grams(lpips_alex, image)
    first_two = perceptual_grams(lpips_alex, image, 2)
    assert first_two.numel() == 64**2 + 192**2 and everything.numel() == first_two.numel() + 384**2 + 2 * 256**2
    assert torch.equal(first_two, everything[: first_two.numel()])
    with pytest.raises(ValueError, match="layers must be between 1 and 5, got 6"):
        perceptual_grams(lpips_alex, image, 6)
    for bad in (0, 6, True, 2.0):
        with pytest.raises(ValueError, match="view_gram_layers must be a whole number from 1 to 5"):
            CloakSettings(view_gram_layers=bad)


@pytest.mark.parametrize("objective", ["decoded-lpips", "decoded-gram"])
def test_the_whole_image_objectives_need_the_metric_and_one_decoder_tile(encoder, lpips_alex, objective) -> None:
    # LPIPS and Gram statistics compare whole images: without the metric, or on a view larger than one decoder
    # tile, each says so in one line instead of decoding in tiles.
    from stylecloak.optimize import _ShrunkView

    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 128)))
    target = get_target("ink-hatching").render(original, seed=0)
    with pytest.raises(ValueError, match=f"the {objective} objective needs the perceptual metric"):
        _ShrunkView(encoder, original, target, 2, 512, objective=objective)
    view = _ShrunkView(encoder, original, target, 2, 512, objective=objective, perceptual=lpips_alex)
    assert view.decoder is not None
    view.decoder.tile_latent = 1  # as if the view were larger than one decoder tile
    with pytest.raises(ValueError, match=f"'{objective}' decodes each shrunk view whole"):
        view.progress(original)


def test_the_decoded_view_objective_needs_a_decoder_and_a_known_name(lpips_alex) -> None:
    from .test_large_images import SmallLocalEncoder  # random weights, and no decoder

    original = quantize_8bit(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    encoder_only = SmallLocalEncoder()
    with pytest.raises(ValueError, match="needs an encoder with a decoder"):
        optimize_cloak(original, 1 - original, encoder_only, lpips_alex, OptimizerConfig(view_objective="decoded"))
    with pytest.raises(ValueError, match="view_objective must be one of latent, decoded"):
        optimize_cloak(original, 1 - original, encoder_only, lpips_alex, OptimizerConfig(view_objective="pixels"))


def test_balanced_views_share_the_loss_by_how_far_each_still_is_from_the_target(encoder, lpips_alex) -> None:
    # A mimic shrinks by one factor the cloak cannot know: view_balance gives the least-moved view the most of
    # the loss, so that the effect spreads over the views instead of going where it comes easiest.
    from stylecloak.optimize import balanced_view_shares

    assert balanced_view_shares([0.2, 0.2], 4.0) == pytest.approx([1.0, 1.0])
    assert balanced_view_shares([0.5, 0.0], 1.0) == pytest.approx([2 / 3, 4 / 3])  # remaining 0.5 and 1
    assert balanced_view_shares([0.5, 0.0], 2.0) == pytest.approx([0.4, 1.6])  # 0.25 and 1
    assert balanced_view_shares([0.1, 0.3, 0.2], 0.0) == pytest.approx([1.0, 1.0, 1.0])
    assert balanced_view_shares([1.2, 0.0], 1.0)[0] > 0  # a view past its target keeps a share
    with pytest.raises(ValueError, match="must be >= 0"):
        balanced_view_shares([0.1], -1.0)
    assert OptimizerConfig().view_balance == 0  # experimental and off: not a setting

    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 256)))
    target = get_target("ink-hatching").render(original, seed=0)
    cloaks = []
    for balance in (0.0, 8.0):
        config = OptimizerConfig(
            steps=4, patience=0, learning_rate=0.02, mimic_downscales=(2, 4), full_size_weight=0.0, view_balance=balance
        )
        outcome = optimize_cloak(original, target, encoder, lpips_alex, config)
        assert outcome.lpips <= config.budget
        cloaks.append(outcome.cloaked)
    assert not torch.equal(*cloaks)  # the shares reached the views' losses
    with pytest.raises(ValueError, match="view_balance must be >= 0"):
        optimize_cloak(original, target, encoder, lpips_alex, OptimizerConfig(steps=1, view_balance=-1.0))


def test_a_change_made_over_cells_keeps_only_detail_coarser_than_a_cell(encoder, lpips_alex) -> None:
    # A shrink the cloak cannot know averages away a fine pattern aimed at another shrink; change_cell keeps each
    # step's change to the coarse detail that every shrink up to about the cell's size keeps.
    from stylecloak.optimize import smooth_over_cells

    gradient = torch.randn(1, 3, 37, 50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(smooth_over_cells(gradient, 1), gradient)
    smooth = smooth_over_cells(gradient, 4)
    assert smooth.shape == gradient.shape
    # Neighbouring pixels differ far less than in the raw gradient, and the mean is kept.
    assert (smooth.diff(dim=-1).abs().mean() / gradient.diff(dim=-1).abs().mean()) < 0.3
    assert float(smooth.mean()) == pytest.approx(float(gradient.mean()), abs=0.05)

    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 256)))
    target = get_target("ink-hatching").render(original, seed=0)
    config = OptimizerConfig(steps=4, patience=0, learning_rate=0.02, mimic_downscales=(2, 4), change_cell=4)
    outcome = optimize_cloak(original, target, encoder, lpips_alex, config)
    assert outcome.lpips <= config.budget
    change = outcome.cloaked - original
    fine = OptimizerConfig(steps=4, patience=0, learning_rate=0.02, mimic_downscales=(2, 4))
    fine_change = optimize_cloak(original, target, encoder, lpips_alex, fine).cloaked - original
    # The coarse change's pixel-to-pixel steps are smaller for its size than the fine one's.
    roughness = [float(c.diff(dim=-1).abs().mean() / c.abs().mean()) for c in (change, fine_change)]
    assert roughness[0] < roughness[1]
    assert OptimizerConfig.from_settings(CloakSettings(change_cell=4)).change_cell == 4
    with pytest.raises(ValueError, match="change_cell must be a whole number of pixels from 1 to 16"):
        CloakSettings(change_cell=0)
    with pytest.raises(ValueError, match="change_cell must be >= 1"):
        optimize_cloak(original, target, encoder, lpips_alex, OptimizerConfig(steps=1, change_cell=0))


def test_a_full_size_view_moves_what_the_decoder_makes_of_the_posted_size(encoder, lpips_alex) -> None:
    # The view objective works on the shrunk views only; a mimic that trains at the posted size sees the full
    # size, where a design with full_size_weight 0 aims at nothing. full_size_view adds that view.
    from stylecloak.metrics import decoded_target_progress
    from stylecloak.optimize import _view_factors

    original = quantize_8bit(image_to_tensor(load_painting("hokusai_great_wave.png", 128)))
    target = get_target("ink-hatching").render(original, seed=0)
    base = OptimizerConfig(
        steps=6, patience=0, learning_rate=0.02, mimic_downscales=(2,), full_size_weight=0, view_objective="decoded"
    )
    with_view = dataclasses.replace(base, full_size_view=True)
    assert _view_factors(base, original.shape[-2:]) == [2]
    assert _view_factors(with_view, original.shape[-2:]) == [1, 2]
    progress = [
        decoded_target_progress(
            encoder, original, optimize_cloak(original, target, encoder, lpips_alex, c).cloaked, target
        )
        for c in (base, with_view)
    ]
    assert progress[1] > progress[0] + 0.05
    assert OptimizerConfig.from_settings(CloakSettings(full_size_view=True)).full_size_view
    # The settings that need a view take the full-size one as one (the design with that view alone).
    alone = CloakSettings(mimic_downscales=(1,), full_size_view=True, view_objective="decoded", full_size_weight=0)
    assert OptimizerConfig.from_settings(alone).full_size_view
    with pytest.raises(ValueError, match=r"factor above 1 \(or full_size_view\)"):
        CloakSettings(mimic_downscales=(1,), view_objective="decoded")
