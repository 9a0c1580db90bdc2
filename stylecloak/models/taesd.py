"""The tiny autoencoder family (TAESD, TAESDXL, TAESD3, TAEF1, TAEF2) in plain PyTorch.

Written from the upstream TAESD architecture (the state-dict keys match the upstream files, so the
published ``*_encoder.pth`` / ``*_decoder.pth`` state dicts load as they are). The variants differ only in the
number of latent channels and in whether the three low-resolution blocks carry a pooled branch (TAEF2 does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .base import LatentEncoder, pad_to_multiple
from .weights import ModelFile, resolve_model_file


def _conv3x3(n_in: int, n_out: int, **kwargs: object) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)  # type: ignore[arg-type]


class _Clamp(nn.Module):
    """Soft clamp of latents to (-3, 3), as the decoders were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Residual block: three 3x3 convs, added to the input, then ReLU.

    With ``pooled=True`` (TAEF2's lowest-resolution blocks) a per-pixel bottleneck branch (1x1 conv to 256,
    GroupNorm, ReLU, 1x1 conv back to 64) is first added to the input. We checked the two readings of "pooled"
    against the real TAEF2 weights: adding the branch per pixel gives a 28.7 dB mean round trip on 8 shared
    paintings, applying it to the spatial mean gives 24.6 dB, so the per-pixel form is the trained one.
    """

    def __init__(self, channels: int = 64, pooled: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv3x3(channels, channels),
            nn.ReLU(),
            _conv3x3(channels, channels),
            nn.ReLU(),
            _conv3x3(channels, channels),
        )
        self.pool: nn.Module | None = None
        if pooled:
            self.pool = nn.Sequential(
                nn.Conv2d(channels, 256, 1, bias=False),
                nn.GroupNorm(4, 256),
                nn.ReLU(),
                nn.Conv2d(256, channels, 1, bias=False),
            )
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + x)


@dataclass(frozen=True)
class TinyAutoencoderConfig:
    """What distinguishes one member of the family from another."""

    latent_channels: int
    pooled_low_res_blocks: bool = False


TINY_AUTOENCODER_CONFIGS: dict[str, TinyAutoencoderConfig] = {
    "taesd": TinyAutoencoderConfig(latent_channels=4),
    "taesdxl": TinyAutoencoderConfig(latent_channels=4),
    "taesd3": TinyAutoencoderConfig(latent_channels=16),
    "taef1": TinyAutoencoderConfig(latent_channels=16),
    "taef2": TinyAutoencoderConfig(latent_channels=32, pooled_low_res_blocks=True),
}


def build_tiny_encoder(config: TinyAutoencoderConfig) -> nn.Sequential:
    """RGB in [0, 1] (H, W multiples of 8) -> latents at H/8 x W/8."""
    pooled = config.pooled_low_res_blocks
    return nn.Sequential(
        _conv3x3(3, 64), Block(),
        _conv3x3(64, 64, stride=2, bias=False), Block(), Block(), Block(),
        _conv3x3(64, 64, stride=2, bias=False), Block(), Block(), Block(),
        _conv3x3(64, 64, stride=2, bias=False), Block(pooled=pooled), Block(pooled=pooled), Block(pooled=pooled),
        _conv3x3(64, config.latent_channels),
    )  # fmt: skip


def build_tiny_decoder(config: TinyAutoencoderConfig) -> nn.Sequential:
    """Latents -> RGB, roughly in [0, 1] (clamp the output)."""
    pooled = config.pooled_low_res_blocks
    return nn.Sequential(
        _Clamp(), _conv3x3(config.latent_channels, 64), nn.ReLU(),
        Block(pooled=pooled), Block(pooled=pooled), Block(pooled=pooled),
        nn.Upsample(scale_factor=2), _conv3x3(64, 64, bias=False), Block(), Block(), Block(),
        nn.Upsample(scale_factor=2), _conv3x3(64, 64, bias=False), Block(), Block(), Block(),
        nn.Upsample(scale_factor=2), _conv3x3(64, 64, bias=False), Block(),
        _conv3x3(64, 3),
    )  # fmt: skip


def _channels_last(image: torch.Tensor) -> torch.Tensor:
    # 3x3 convolutions with 64 channels run 20-40% faster on CPU (oneDNN) in channels-last layout.
    return image.contiguous(memory_format=torch.channels_last)


class _ChannelsLast(nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return _channels_last(image)


class TinyAutoencoder(LatentEncoder):
    """A member of the TAESD family: fast, small, and the embedded default (TAEF2)."""

    def __init__(self, name: str, config: TinyAutoencoderConfig) -> None:
        super().__init__()
        self.name = name
        self.latent_channels = config.latent_channels
        self.encoder = build_tiny_encoder(config)
        self.decoder: nn.Module | None = build_tiny_decoder(config)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        latents = self.encoder(_channels_last(pad_to_multiple(image, self.downscale)))
        # Latents of the padding are dropped, so that the result covers only the real image.
        return latents[..., : -(-height // self.downscale), : -(-width // self.downscale)]

    def split(self) -> tuple[nn.Module, nn.Module]:
        # The last three blocks and the output conv work at 1/8 resolution, and TAEF2's GroupNorm there is
        # global: they form the head, which then sees the whole image at once.
        return nn.Sequential(_ChannelsLast(), *self.encoder[:-4]), self.encoder[-4:]

    @property
    def can_decode(self) -> bool:
        return self.decoder is not None

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if self.decoder is None:
            raise NotImplementedError(f"encoder {self.name!r} was loaded without its decoder")
        return self.decoder(latents).clamp(0, 1)


# The tiny autoencoders' files, pinned by sha256. TAEF2's hashes are those of the files in shared/models/taef2
# (its SOURCE.md). The others could not be fetched here (no internet); their hashes are the ones public build
# recipes pin for the same upstream files (a Nix model list whose TAEF2 hashes match ours exactly, and, for
# taesd, taesdxl and the taef1 decoder, a second independent project). The download location is the upstream
# commit e87efbcf, which other projects pin the TAEF1 and TAEF2 decoders to with these same hashes, so that a
# later upstream release cannot change what a pinned name means.
TAESD_UPSTREAM = "https://github.com/madebyollin/taesd/raw/e87efbcfc5298d84986b5d9280f40d358b6a228d"
_TINY_AUTOENCODER_SHA256: dict[str, tuple[str, str]] = {  # name -> (encoder, decoder)
    "taef2": (
        "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
        "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
    ),
    "taef1": (
        "1d1ad34546aea0edd99dc2db9411d870319f428ced5065c6464582c17c070536",
        "beae86f2eeaf0cea884dc8ffe639fb297dac8c984441bb53420f07d767785104",
    ),
    "taesd3": (
        "b8fefa64b92a867df673c7f22fb2cbc6ae144070e22e7a0b3af0f21de2f43f92",
        "178fbb90c8c3bab4fe5e30dcba3b85d8bd2c9a203f71239c3a3223720c310b58",
    ),
    "taesdxl": (
        "a5648de089aba6b641e505c0f132b2dc7ff70ab6070c31be5e624e807e711c5e",
        "a3956b8a7a763f251c7357aad6375dacdb6d971121c73e97a3069fc33a94fe1e",
    ),
    "taesd": (
        "15bc6128f0ac51c673d3427216082ebfa62402ffc89763af74edfe259b32d49d",
        "02873377c3f4659cd9f9adb2f718dcb434ba4c7bba3af3ee7bb95cbdabe2d3cf",
    ),
}


def tiny_autoencoder_files(name: str) -> tuple[ModelFile, ModelFile]:
    """The encoder and decoder files of a tiny autoencoder, with their pinned sha256 and upstream location
    (sha256 "" for a family member with no pin)."""
    hashes = _TINY_AUTOENCODER_SHA256.get(name, ("", ""))
    encoder_file, decoder_file = (
        ModelFile(name, f"{name}_{part}.pth", digest, f"{TAESD_UPSTREAM}/{name}_{part}.pth", "MIT")
        for part, digest in zip(("encoder", "decoder"), hashes)
    )
    return encoder_file, decoder_file


def load_tiny_autoencoder(
    name: str, path: str | os.PathLike[str] | None = None, with_decoder: bool = True, verify: bool = True
) -> TinyAutoencoder:
    """Load a TAESD-family model from ``path`` (a folder, or the encoder file) or from the model folders.

    A pinned file is checked against its sha256 wherever it comes from: a corrupt download or another release
    under the same name must not pass as the model the name stands for. ``verify=False`` is for weights of the
    same architecture that are knowingly not the release (tests, a user's own training)."""
    config = TINY_AUTOENCODER_CONFIGS[name]
    encoder_file, decoder_file = tiny_autoencoder_files(name)
    folder = None
    if path is not None:
        folder = Path(path).expanduser()
        if folder.is_file():  # the encoder file itself: the decoder is looked for beside it
            encoder_file = ModelFile(
                name, folder.name, encoder_file.sha256, encoder_file.upstream_url, encoder_file.licence
            )
            folder = folder.parent
    model = TinyAutoencoder(name, config)
    encoder_path = resolve_model_file(encoder_file, folder, verify=verify and bool(encoder_file.sha256))
    model.encoder.load_state_dict(torch.load(encoder_path, map_location="cpu", weights_only=True))
    decoder_ok = with_decoder
    if with_decoder:
        try:
            decoder_path = resolve_model_file(decoder_file, folder, verify=verify and bool(decoder_file.sha256))
            model.decoder.load_state_dict(torch.load(decoder_path, map_location="cpu", weights_only=True))  # type: ignore[union-attr]
        except FileNotFoundError:
            decoder_ok = False  # the encoder is all that cloaking needs
    if not decoder_ok:
        model.decoder = None
    return model.to(memory_format=torch.channels_last).eval().requires_grad_(False)  # type: ignore[call-overload]
