"""The peer methods and stylecloak behind the one optimiser interface, on the real TAEF2 and LPIPS, and the
precision setting of the optimiser."""

from __future__ import annotations

import pytest
import torch

from stylecloak.methods import CloakMethod, GlazeV1, MistTextural, PhotoGuardEncoderAttack, StylecloakMethod
from stylecloak.methods.matching import match_budget
from stylecloak.methods.peers import mist_pattern, square_windows
from stylecloak.metrics import lpips_distance, target_progress
from stylecloak.optimize import OptimizerConfig, autocast_dtype, optimize_cloak, quantize_8bit
from stylecloak.settings import CloakSettings
from stylecloak.targets import get_target

from .conftest import load_painting


@pytest.fixture(scope="module")
def painting() -> torch.Tensor:
    return quantize_8bit(
        torch.from_numpy(load_painting("hokusai_great_wave.png", 96)).permute(2, 0, 1).unsqueeze(0).contiguous()
    )


@pytest.mark.parametrize(
    "method",
    [
        PhotoGuardEncoderAttack(eps=8 / 255, steps=6),
        MistTextural(steps=6),
        GlazeV1(steps=3, square=128),
        StylecloakMethod(CloakSettings.from_presets("medium", "fast")),
    ],
    ids=lambda m: m.name,
)
def test_each_method_moves_the_encoder_toward_its_target(method: CloakMethod, painting, encoder, lpips_alex) -> None:
    assert isinstance(method, CloakMethod)
    style_target = quantize_8bit(get_target("ink-hatching").render(painting))
    result = method.cloak(painting, style_target, encoder, lpips_alex)
    assert result.cloaked.shape == painting.shape
    assert torch.equal(result.cloaked, quantize_8bit(result.cloaked))  # exact 8-bit levels, as saved
    assert target_progress(encoder, painting, result.cloaked, result.target) > 0.02
    eps = getattr(method, "eps", getattr(method, "max_change", None))
    if eps is not None:  # L-infinity methods keep their bound (plus the 8-bit rounding)
        assert float((result.cloaked - painting).abs().max()) <= eps + 0.5 / 255 + 1e-6
    matched, value, _ = match_budget(painting, result.cloaked, lpips_alex, 0.02)
    assert value <= 0.02
    assert lpips_distance(lpips_alex, painting, matched) == pytest.approx(value, abs=1e-5)


def test_square_windows_cover_the_image() -> None:
    assert square_windows(100, 250) == [(0, 0, 100), (0, 75, 100), (0, 150, 100)]
    assert square_windows(300, 120) == [(0, 0, 120), (90, 0, 120), (180, 0, 120)]
    assert square_windows(64, 64) == [(0, 0, 64)]
    pattern = mist_pattern(40, 70)
    assert pattern.shape == (1, 3, 40, 70) and 0 <= float(pattern.min()) and float(pattern.max()) <= 1


def test_precision_setting(painting, encoder, lpips_alex) -> None:
    assert autocast_dtype("fp32", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        autocast_dtype("fp8", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision"):
        CloakSettings(precision="half")
    target = quantize_8bit(get_target("ink-hatching").render(painting))
    # bf16 only changes the encoder's arithmetic in the steps: the budget is still measured (and held) in fp32.
    outcomes = {
        p: optimize_cloak(painting, target, encoder, lpips_alex, OptimizerConfig(budget=0.05, steps=6, precision=p))
        for p in ("fp32", "bf16")
    }
    for outcome in outcomes.values():
        assert outcome.lpips <= 0.05
        assert outcome.target_progress > 0.05
        assert lpips_distance(lpips_alex, painting, outcome.cloaked) == pytest.approx(outcome.lpips, abs=1e-5)
    assert outcomes["bf16"].target_progress == pytest.approx(outcomes["fp32"].target_progress, abs=0.05)
