"""Full-model encoders through diffusers (the ``full`` extra): the VAEs of Stable Diffusion 1.x/2.x, SDXL and
FLUX.1 (``AutoencoderKL``), and the TAESD family as diffusers ``AutoencoderTiny`` folders.

Latents are what the diffusion model trains on: the posterior *mean* of the VAE (no sampling, so the cloak's
gradient is not noise), shifted and scaled by the model's own ``shift_factor`` and ``scaling_factor``.
On a GPU the weights run in fp16 for SD 1.x/2.x and bf16 for SDXL and FLUX (their VAEs overflow in fp16); on
the CPU in fp32.

``PATH`` is a diffusers folder (``config.json`` and weights), a whole pipeline folder (its ``vae/`` is used),
or a single weights file with a ``config.json`` beside it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import LatentEncoder, pad_to_multiple


class DiffusersNotInstalledError(ImportError):
    pass


def _diffusers() -> Any:
    try:
        import diffusers
    except ImportError:
        raise DiffusersNotInstalledError("this encoder needs diffusers: pip install 'stylecloak[full]'") from None
    return diffusers


class DiffusersVAEEncoder(LatentEncoder):
    """``AutoencoderKL``: ``(mean(E(2x - 1)) - shift) * scale``; decodes back for "what the model sees"."""

    # SD's VAE has a self-attention block at 1/8 resolution: it is not local, so tiles of a large image see
    # only their own context there (as diffusers' own tiled VAE does). The context keeps the seams small.
    stem_context_px = 128

    def __init__(self, name: str, vae: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.vae = vae
        config = vae.config
        self.latent_channels = int(config.latent_channels)
        self.downscale = 2 ** (len(config.block_out_channels) - 1)
        self.scaling_factor = float(config.scaling_factor or 1.0)
        self.shift_factor = float(getattr(config, "shift_factor", None) or 0.0)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        padded = pad_to_multiple(image, self.downscale).to(self.dtype) * 2 - 1
        posterior = self.vae.encode(padded).latent_dist
        latents = (posterior.mean.float() - self.shift_factor) * self.scaling_factor
        return latents[..., : -(-height // self.downscale), : -(-width // self.downscale)]

    @property
    def can_decode(self) -> bool:
        return True

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        raw = latents / self.scaling_factor + self.shift_factor
        return (self.vae.decode(raw.to(self.dtype)).sample.float() + 1).div(2).clamp(0, 1)


class DiffusersTinyEncoder(LatentEncoder):
    """``AutoencoderTiny`` (TAESD, TAESDXL, TAESD3, TAEF1 as diffusers folders): its latents are already in the
    diffusion model's scaled space; diffusers' ``encode`` expects [-1, 1] input."""

    stem_context_px = 80

    def __init__(self, name: str, model: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.model = model
        self.latent_channels = int(model.config.latent_channels)
        self.downscale = 8

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        latents = self.model.encode(pad_to_multiple(image, self.downscale) * 2 - 1).latents
        return latents[..., : -(-height // self.downscale), : -(-width // self.downscale)]

    @property
    def can_decode(self) -> bool:
        return True

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return (self.model.decode(latents).sample + 1).div(2).clamp(0, 1)


def _weights_dtype(name: str, device: torch.device) -> torch.dtype:
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if name.startswith(("flux", "sdxl")) else torch.float16


def _model_folder(path: Path) -> Path:
    """The folder holding the VAE's ``config.json``: ``path`` itself, or its ``vae/`` for a whole pipeline."""
    if (path / "config.json").is_file():
        return path
    if (path / "vae" / "config.json").is_file():
        return path / "vae"
    raise FileNotFoundError(f"{path} has no config.json (nor vae/config.json): it is not a diffusers model folder")


def load_diffusers_vae(
    name: str, path: str | os.PathLike[str], device: str | torch.device = "cpu", tiny: bool = False
) -> LatentEncoder:
    """Load ``AutoencoderKL`` (or ``AutoencoderTiny`` with ``tiny``) from a local folder or file, offline."""
    diffusers = _diffusers()
    device = torch.device(device)
    cls = diffusers.AutoencoderTiny if tiny else diffusers.AutoencoderKL
    location = Path(path).expanduser()
    if not location.exists():
        raise FileNotFoundError(f"{location} does not exist")
    dtype = _weights_dtype(name, device)
    if location.is_file():
        config_path = location.parent / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"a single weights file needs its config.json beside it: {config_path} is missing")
        model = cls.from_config(json.loads(config_path.read_text()))
        model.load_state_dict(_read_state_dict(location))
        model = model.to(dtype)
    else:
        model = cls.from_pretrained(_model_folder(location), torch_dtype=dtype, local_files_only=True)
    model = model.to(device).eval().requires_grad_(False)
    return (DiffusersTinyEncoder if tiny else DiffusersVAEEncoder)(name, model)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state
