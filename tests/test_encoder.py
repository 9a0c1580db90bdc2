"""The tiny-autoencoder family with the real TAEF2 weights."""

from __future__ import annotations

import shutil

import pytest
import torch

from stylecloak.imaging import image_to_tensor
from stylecloak.metrics import psnr
from stylecloak.models.encoders import UnknownEncoderError, load_encoder, parse_encoder_spec
from stylecloak.models.taesd import (
    TINY_AUTOENCODER_CONFIGS,
    build_tiny_decoder,
    build_tiny_encoder,
    load_tiny_autoencoder,
)
from stylecloak.models.tiled import TiledEncoder
from stylecloak.models.weights import ChecksumMismatchError, ModelNotFoundError

from .conftest import SHARED, load_painting


def test_taef2_round_trip_on_a_painting(encoder) -> None:
    x = image_to_tensor(load_painting("hokusai_great_wave.png", 512))
    with torch.no_grad():
        latents = encoder.encode(x)
        decoded = encoder.decode(latents)[..., : x.shape[2], : x.shape[3]]
    assert latents.shape[1] == 32
    assert latents.shape[2:] == (-(-x.shape[2] // 8), -(-x.shape[3] // 8))
    assert psnr(x, decoded) > 22.0


def test_encode_accepts_sizes_that_are_not_multiples_of_8(encoder) -> None:
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        assert encoder.encode(x).shape == (1, 32, 5, 7)


def test_tiled_encoding_matches_a_whole_image_pass(encoder) -> None:
    """Stem tiles with context plus a whole-image head give the whole-image latents (TAEF2's GroupNorm is global)."""
    x = image_to_tensor(load_painting("bruegel_harvesters.png", 320))
    tiled = TiledEncoder(encoder, x.shape[2], x.shape[3], tile_size=128)
    assert len(tiled.tiles) > 4
    with torch.no_grad():
        whole = encoder.encode(x)
    assert tiled.encode(x).shape == whole.shape
    assert (tiled.encode(x) - whole).abs().mean() < 0.01 * whole.abs().mean()


def test_tiled_gradient_matches_a_whole_image_gradient(encoder) -> None:
    x = image_to_tensor(load_painting("durer_lion.png", 200))
    target = torch.rand(1, 32, *encoder.encode(x).shape[2:])
    grads = []
    for tile_size in (256, 64):
        image = x.clone().requires_grad_(True)
        TiledEncoder(encoder, x.shape[2], x.shape[3], tile_size).backward(image, lambda z: (z - target).pow(2).sum())
        grads.append(image.grad)
    cosine = torch.nn.functional.cosine_similarity(grads[0].flatten(), grads[1].flatten(), dim=0)
    assert cosine > 0.99


def test_corrupted_weights_are_refused(tmp_path) -> None:
    folder = tmp_path / "taef2"
    shutil.copytree(SHARED / "models" / "taef2", folder)
    data = bytearray((folder / "taef2_encoder.pth").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "taef2_encoder.pth").write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        load_encoder(f"taef2:{folder}")


def test_missing_weights_say_how_to_get_them(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="STYLECLOAK_MODELS"):
        load_encoder(f"taef2:{tmp_path}")


def test_unknown_encoder_lists_the_known_ones() -> None:
    with pytest.raises(UnknownEncoderError, match="taef2"):
        load_encoder("nope")


def test_spec_parsing() -> None:
    assert parse_encoder_spec("taef2") == ("taef2", None)
    assert parse_encoder_spec("taesd:/m/taesd") == ("taesd", "/m/taesd")


@pytest.mark.parametrize("name", ["taesd", "taesd3"])
def test_other_family_members_load_from_a_path(tmp_path, name: str) -> None:
    """TAESD-style files (4 or 16 channels, no pooled branch) load from a path; random weights are not the
    pinned release, so the command-line path refuses them and only an explicit verify=False loads them."""
    config = TINY_AUTOENCODER_CONFIGS[name]
    torch.manual_seed(0)
    torch.save(build_tiny_encoder(config).state_dict(), tmp_path / f"{name}_encoder.pth")
    torch.save(build_tiny_decoder(config).state_dict(), tmp_path / f"{name}_decoder.pth")
    with pytest.raises(ChecksumMismatchError, match="not the pinned release"):
        load_encoder(f"{name}:{tmp_path}")
    model = load_tiny_autoencoder(name, tmp_path, verify=False)
    with torch.no_grad():
        latents = model.encode(torch.rand(1, 3, 64, 64))
        assert latents.shape == (1, config.latent_channels, 8, 8)
        assert model.decode(latents).shape == (1, 3, 64, 64)
