"""The cloak optimiser on real TAEF2 and LPIPS weights: budget held on the saved 8-bit file, real progress."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylecloak.imaging import image_to_tensor, load_image, quantize_rgb, save_image, tensor_to_image
from stylecloak.metrics import lpips_distance, target_progress
from stylecloak.optimize import OptimizerConfig, optimize_cloak, quantize_8bit
from stylecloak.settings import INTENSITY_PRESETS
from stylecloak.targets import get_target

from .conftest import load_painting

FEW_STEPS = OptimizerConfig(budget=0.05, steps=6, learning_rate=0.02, seed=3)


@pytest.fixture(scope="module")
def painting_and_target() -> tuple[torch.Tensor, torch.Tensor]:
    original = quantize_8bit(image_to_tensor(load_painting("leonardo_mona_lisa.png", 160)))
    return original, get_target("mosaic").render(original, seed=0)


@pytest.fixture(scope="module")
def outcome(painting_and_target, encoder, lpips_alex):
    original, target = painting_and_target
    return optimize_cloak(original, target, encoder, lpips_alex, FEW_STEPS)


def test_output_is_exactly_8bit(outcome) -> None:
    levels = outcome.cloaked * 255
    assert torch.equal(levels, levels.round())


def test_budget_is_held_and_progress_is_made_on_the_saved_file(
    outcome, painting_and_target, encoder, lpips_alex, tmp_path
) -> None:
    original, target = painting_and_target
    path = save_image(tmp_path / "cloaked.png", quantize_rgb(tensor_to_image(outcome.cloaked)))
    saved = image_to_tensor(load_image(path).rgb)
    assert torch.equal(saved, outcome.cloaked)  # the saved file is the optimised image, bit for bit
    measured_lpips = lpips_distance(lpips_alex, original, saved)
    assert measured_lpips <= FEW_STEPS.budget
    assert measured_lpips == pytest.approx(outcome.lpips, abs=1e-6)
    progress = target_progress(encoder, original, saved, target)
    assert progress > 0.1
    assert progress == pytest.approx(outcome.target_progress, abs=1e-4)


def test_the_image_really_changed(outcome, painting_and_target) -> None:
    original, _ = painting_and_target
    changed = (outcome.cloaked - original).abs() * 255
    assert changed.max() >= 2
    assert (changed > 0).float().mean() > 0.2  # spread over the image, not a few pixels


def test_history_records_each_step(outcome) -> None:
    assert len(outcome.history) >= 2
    assert all(b.seconds >= a.seconds for a, b in zip(outcome.history, outcome.history[1:]))


def test_same_seed_same_cloak(outcome, painting_and_target, encoder, lpips_alex) -> None:
    original, target = painting_and_target
    again = optimize_cloak(original, target, encoder, lpips_alex, FEW_STEPS)
    assert torch.equal(again.cloaked, outcome.cloaked)


def test_a_tiny_budget_is_still_held(painting_and_target, encoder, lpips_alex) -> None:
    original, target = painting_and_target
    config = OptimizerConfig(budget=0.004, steps=2, learning_rate=0.05)
    result = optimize_cloak(original, target, encoder, lpips_alex, config)
    assert lpips_distance(lpips_alex, original, result.cloaked) <= 0.004


def test_higher_budget_moves_further(painting_and_target, encoder, lpips_alex, outcome) -> None:
    original, target = painting_and_target
    high = INTENSITY_PRESETS["high"]  # every bound of the high intensity, not only its LPIPS budget
    config = OptimizerConfig(
        budget=high.budget,
        ssim_min=high.ssim_min,
        ssim_window_min=high.ssim_window_min,
        psnr_min=high.psnr_min,
        jnd_strength=high.jnd_strength,
        max_change=high.max_change,
        steps=6,
        learning_rate=0.02,
        seed=3,
    )
    stronger = optimize_cloak(original, target, encoder, lpips_alex, config)
    assert stronger.lpips <= high.budget
    assert stronger.target_progress > outcome.target_progress


def test_target_must_match_the_image(encoder, lpips_alex) -> None:
    with pytest.raises(ValueError, match="target shape"):
        optimize_cloak(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 72), encoder, lpips_alex, FEW_STEPS)


def test_target_equal_to_image_is_refused(encoder, lpips_alex) -> None:
    image = quantize_8bit(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="another target"):
        optimize_cloak(image, image.clone(), encoder, lpips_alex, FEW_STEPS)


def test_progress_callback_sees_every_step(painting_and_target, encoder, lpips_alex) -> None:
    original, target = painting_and_target
    seen: list[int] = []
    optimize_cloak(
        original, target, encoder, lpips_alex, OptimizerConfig(steps=2), progress=lambda r: seen.append(r.step)
    )
    assert seen == [0, 1, 2]


def test_quantize_8bit() -> None:
    x = torch.tensor([-0.2, 0.0, 0.5, 1.3, 0.1234])
    q = quantize_8bit(x)
    assert q.min() >= 0 and q.max() <= 1
    assert np.allclose((q * 255).numpy(), np.round((q * 255).numpy()))
