"""Countermeasures of the robustness table (docs/metrics.md), tiled decoding, and SSIM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylecloak.countermeasures import (
    COUNTERMEASURES,
    Countermeasure,
    decode_latents,
    downscale_upscale,
    gaussian_blur,
    gaussian_noise,
    get_countermeasure,
    jpeg,
)
from stylecloak.imaging import image_to_tensor
from stylecloak.metrics import psnr, ssim

from .conftest import load_painting


@pytest.fixture(scope="module")
def painting() -> torch.Tensor:
    """A 96x65 painting (an odd height, not a multiple of 8), with 8-bit values as a file holds them."""
    return image_to_tensor(load_painting("hokusai_great_wave.png", 96))


def _high_frequency_energy(image: torch.Tensor) -> float:
    """Mean squared difference between horizontal neighbours: large for sharp images, small for smooth ones."""
    return float((image[..., 1:] - image[..., :-1]).pow(2).mean())


def test_registry_names_and_order() -> None:
    names = [c.name for c in COUNTERMEASURES]
    assert names == [
        "jpeg95",
        "jpeg85",
        "jpeg75",
        "noise2",
        "noise4",
        "noise8",
        "downscale50",
        "blur1",
        "noise8+upscale",
        "vae_roundtrip",
    ]
    assert all(isinstance(c, Countermeasure) and c.description for c in COUNTERMEASURES)
    assert get_countermeasure("blur1").name == "blur1"
    with pytest.raises(KeyError, match="known"):
        get_countermeasure("nonsense")


@pytest.mark.parametrize("countermeasure", COUNTERMEASURES, ids=lambda c: c.name)
def test_each_countermeasure_is_a_saved_image_and_deterministic(countermeasure, painting, encoder) -> None:
    out = countermeasure.apply(painting, encoder)
    assert out.shape == painting.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    levels = out * 255
    assert torch.equal(levels, torch.round(levels)), "values must be 8-bit levels, as a saved file holds"
    assert torch.equal(out, countermeasure.apply(painting, encoder)), "same input, same output"
    assert not torch.equal(out, painting), "a countermeasure that changes nothing measures nothing"
    # Each one changes the image, but leaves a recognisable painting (PSNR well above that of unrelated images).
    assert 18 < psnr(painting, out) < 60


def test_jpeg_changes_more_at_lower_quality(painting) -> None:
    errors = [float((jpeg(painting, q) - painting).abs().mean()) * 255 for q in (95, 85, 75)]
    assert errors[0] < errors[1] < errors[2]
    # A few levels on average (4:2:0 chroma subsampling costs most of it on a small painting: 4.2, 6.2, 7.6
    # levels measured at 96 px), not a different image.
    assert 1 < errors[0] < 6 and errors[2] < 12


@pytest.mark.parametrize("sigma", [2, 4, 8])
def test_noise_has_the_asked_strength(sigma, painting) -> None:
    grey = torch.full((1, 3, 64, 64), 0.5)  # mid-grey: no clipping, so the noise shows as it is
    measured = float((gaussian_noise(grey, sigma, seed=1) - grey).std()) * 255
    assert measured == pytest.approx(sigma, rel=0.05)
    assert not torch.equal(gaussian_noise(painting, sigma, seed=1), gaussian_noise(painting, sigma, seed=2))


def test_blur_smooths_and_keeps_the_mean(painting) -> None:
    blurred = gaussian_blur(painting, 1.0)
    assert _high_frequency_energy(blurred) < 0.5 * _high_frequency_energy(painting)
    assert float(blurred.mean()) == pytest.approx(float(painting.mean()), abs=2 / 255)
    flat = torch.full((1, 3, 20, 20), 0.25)
    assert torch.allclose(gaussian_blur(flat, 1.0), torch.round(flat * 255) / 255)  # a flat image stays flat
    assert gaussian_blur(torch.rand(1, 3, 3, 3), 1.0).shape == (1, 3, 3, 3)  # smaller than the kernel


def test_downscale_loses_detail_but_keeps_size(painting) -> None:
    out = downscale_upscale(painting, 0.5)
    assert out.shape == painting.shape
    assert _high_frequency_energy(out) < _high_frequency_energy(painting)
    with pytest.raises(ValueError):
        downscale_upscale(painting, 0.0)


def test_round_trip_is_close_to_the_input(encoder) -> None:
    image = image_to_tensor(load_painting("hokusai_great_wave.png", 128))
    out = get_countermeasure("vae_roundtrip").apply(image, encoder)
    assert psnr(image, out) > 20  # TAEF2 keeps the painting; what it drops is what a cloak must survive


def test_tiled_decode_matches_a_whole_decode(encoder) -> None:
    """Decoding in latent tiles (as for a 1024+ px image) gives the whole-image decode: TAEF2's global
    GroupNorm runs on the whole latent map, and only its local upsampling layers are tiled, each with enough
    context. Too little context shows, so the check is a real one."""
    image = image_to_tensor(load_painting("hokusai_great_wave.png", 128))
    latents = encoder.encode(image)  # 11 x 16 cells: tiles of 6 with 10 cells of context are cut at the sides
    height, width = image.shape[-2:]
    whole = decode_latents(encoder, latents, height, width)
    assert whole.shape == image.shape
    tiled = decode_latents(encoder, latents, height, width, tile_latent=6, context_latent=10)
    assert float((whole - tiled).abs().max()) < 1e-5
    too_little = decode_latents(encoder, latents, height, width, tile_latent=6, context_latent=2)
    assert float((whole - too_little).abs().max()) > 1e-2


def test_tiled_decoded_distance_has_the_whole_decodes_value_and_gradient(encoder) -> None:
    """The cloak's decoded objective back-propagates through the decoder one tile at a time (bounded memory on
    large images); its value and gradient must be those of a whole decode, or the optimiser would aim elsewhere."""
    from stylecloak.models.tiled import TiledDecoder

    image = image_to_tensor(load_painting("hokusai_great_wave.png", 128))
    reference = TiledDecoder(encoder).decode(encoder.encode(image.flip(-1)))  # another picture's decoded image
    figures = []
    for tiles in (TiledDecoder(encoder), TiledDecoder(encoder, tile_latent=6, context_latent=10)):
        latents = encoder.encode(image).requires_grad_(True)
        distance = tiles.squared_distance(latents, reference)
        distance.backward()
        figures.append((float(distance.detach()), latents.grad))
    (whole, whole_grad), (tiled, tiled_grad) = figures
    assert whole > 0 and abs(tiled - whole) < 1e-4 * whole
    assert float((tiled_grad - whole_grad).norm()) < 1e-4 * float(whole_grad.norm())
    with torch.no_grad():  # measuring only: the value, no graph
        assert (
            abs(float(TiledDecoder(encoder, 6, 10).squared_distance(encoder.encode(image), reference)) - whole)
            < 1e-4 * whole
        )


def test_round_trip_needs_a_decoder(painting) -> None:
    class NoDecoder:
        can_decode = False

    assert not get_countermeasure("vae_roundtrip").available(NoDecoder())  # type: ignore[arg-type]
    assert get_countermeasure("jpeg95").available(None)


# --------------------------------------------------------------------------------------------------- SSIM


def test_ssim_of_an_image_with_itself_is_one(painting) -> None:
    assert ssim(painting, painting) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_flat_images_is_the_luminance_term() -> None:
    """Flat images have no variance: every window gives (2ab + C1) / (a^2 + b^2 + C1), with C1 = (0.01 * L)^2."""
    a, b = 0.5, 0.75  # exact in float32
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b)) == pytest.approx(expected, rel=1e-12)


def test_ssim_matches_a_hand_computed_window() -> None:
    """An 11x11 image has exactly one window: compare with the formula written out in numpy."""
    rng = np.random.default_rng(0)
    x = rng.random((11, 11))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy, cxy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum(), (w * (x - mx) * (y - my)).sum()
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))

    def as_image(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.repeat(a[None, None], 3, axis=1))

    assert ssim(as_image(x), as_image(y)) == pytest.approx(expected, rel=1e-9)


def test_ssim_is_symmetric_falls_with_noise_and_refuses_tiny_images(painting) -> None:
    noisy = [gaussian_noise(painting, sigma, seed=0) for sigma in (2, 8)]
    assert ssim(painting, noisy[0]) == pytest.approx(ssim(noisy[0], painting), abs=1e-12)
    assert 1 > ssim(painting, noisy[0]) > ssim(painting, noisy[1]) > 0
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_ssim_strips_give_the_whole_image_result(monkeypatch, painting) -> None:
    import stylecloak.metrics as metrics

    noisy = gaussian_noise(painting, 4, seed=0)
    whole = ssim(painting, noisy)
    monkeypatch.setattr(metrics, "SSIM_STRIP_ROWS", 7)
    assert ssim(painting, noisy) == pytest.approx(whole, abs=1e-12)
