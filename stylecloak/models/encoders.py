"""The registry of encoder backends, and the tiny autoencoders that stylecloak runs itself.

The optimiser only knows :class:`~stylecloak.models.base.LatentEncoder` (an image in, latents out,
differentiably; re-exported here). Backends are picked by a spec (:mod:`stylecloak.models.spec`):
``NAME``, ``NAME:PATH``, or an ensemble ``NAME[:PATH][@W]+...``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .base import LatentEncoder, pad_to_multiple
from .spec import ModelSpec, parse_model_spec
from .taesd import TINY_AUTOENCODER_CONFIGS, TinyAutoencoderConfig, build_tiny_decoder, build_tiny_encoder
from .weights import ModelFile, resolve_model_file

__all__ = [
    "DEFAULT_ENCODER",
    "ENCODER_BACKENDS",
    "LatentEncoder",
    "UnknownEncoderError",
    "load_encoder",
    "load_tiny_autoencoder",
    "parse_encoder_spec",
    "pad_to_multiple",
]


class UnknownEncoderError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want a plain sentence
        return str(self.args[0])


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


@dataclass(frozen=True)
class EncoderBackend:
    name: str
    description: str
    load: Callable[[str | None], LatentEncoder]


def _is_diffusers_folder(path: str | None) -> bool:
    if path is None:
        return False
    folder = Path(path).expanduser()
    return (folder / "config.json").is_file() or (
        folder.is_file() and (folder.parent / "config.json").is_file() and folder.suffix in (".safetensors", ".bin")
    )


def _load_tiny(name: str, path: str | None) -> LatentEncoder:
    # A diffusers AutoencoderTiny folder (config.json) goes through diffusers; the original .pth files through ours.
    if _is_diffusers_folder(path):
        from .diffusers_encoders import load_diffusers_vae

        return load_diffusers_vae(name, path, tiny=True)  # type: ignore[arg-type]
    return load_tiny_autoencoder(name, path)


def _tiny_backend(name: str, description: str) -> EncoderBackend:
    return EncoderBackend(name, description, lambda path: _load_tiny(name, path))


def _find_model_folder(name: str) -> Path:
    """``<models dir>/<name>/`` for a model given without a path (where `stylecloak models fetch` puts it)."""
    from .weights import ModelNotFoundError, models_dirs

    looked = [d / name for d in models_dirs()]
    for folder in looked:
        if folder.is_dir():
            return folder
    raise ModelNotFoundError(
        f"model {name!r} not found (looked in: {', '.join(str(f) for f in looked)}). Fetch it with "
        f"`stylecloak models fetch {name}`, or give a local diffusers folder or file: --encoder {name}:PATH."
    )


def _vae_backend(name: str, description: str) -> EncoderBackend:
    def load(path: str | None) -> LatentEncoder:
        from .diffusers_encoders import load_diffusers_vae

        return load_diffusers_vae(name, path if path is not None else _find_model_folder(name))

    return EncoderBackend(name, description, load)


ENCODER_BACKENDS: dict[str, EncoderBackend] = {
    backend.name: backend
    for backend in (
        _tiny_backend("taef2", "tiny autoencoder of the FLUX.2 latent space (embedded default, 32 channels)"),
        _tiny_backend("taef1", "tiny autoencoder of the FLUX.1 latent space (16 channels)"),
        _tiny_backend("taesd3", "tiny autoencoder of the SD3 latent space (16 channels)"),
        _tiny_backend("taesdxl", "tiny autoencoder of the SDXL latent space (4 channels)"),
        _tiny_backend("taesd", "tiny autoencoder of the SD 1.x/2.x latent space (4 channels)"),
        _vae_backend("sd-vae", "Stable Diffusion 1.x/2.x VAE (diffusers AutoencoderKL, 4 channels; full extra)"),
        _vae_backend("sdxl-vae", "SDXL VAE (diffusers AutoencoderKL, 4 channels; full extra)"),
        _vae_backend("flux-vae", "FLUX.1 VAE (diffusers AutoencoderKL, 16 channels; full extra)"),
    )
}

DEFAULT_ENCODER = "taef2"


def parse_encoder_spec(spec: str) -> tuple[str, str | None]:
    """``"taesd:/models/taesd"`` -> ``("taesd", "/models/taesd")``; one member, weight ignored (see models.spec)."""
    (member,) = parse_model_spec(spec)[:1] or [ModelSpec("")]
    return member.name, member.path


def load_encoder(spec: str = DEFAULT_ENCODER, device: str | torch.device = "cpu") -> LatentEncoder:
    """Load an encoder by spec, frozen and in eval mode: ``NAME``, ``NAME:PATH``, or an ensemble of them joined
    by ``+``, each with an optional ``@WEIGHT`` (``sd-vae:/models/vae@0.5+taef2``)."""
    members = parse_model_spec(spec)
    if len(members) > 1:
        from .ensemble import EnsembleEncoder

        return EnsembleEncoder([load_encoder(m.text, device) for m in members], [m.weight for m in members]).to(device)
    name, path = parse_encoder_spec(spec)
    backend = ENCODER_BACKENDS.get(name)
    if backend is None:
        known = ", ".join(sorted(ENCODER_BACKENDS))
        raise UnknownEncoderError(f"unknown encoder {name!r}; known encoders: {known}")
    return backend.load(path).to(device)
