"""Target styles rendered by Stable Diffusion img2img (``--target sd:"oil painting by ..."``), the paper's Omega.

The artwork is re-rendered with a style prompt by a local diffusers ``StableDiffusionImg2ImgPipeline``
(``--target-model PATH``). Large images are rendered in overlapping tiles of the model's native size and
blended with linear ramps, so that the target keeps the artwork's own resolution and layout. Renders are
cached by content (:mod:`stylecloak.targets.cache`): the target's name carries the prompt and the settings.

Strength: how far img2img may move from the artwork (0 keeps it, 1 ignores it). The default, 0.5, keeps the
composition (which the cloak must not fight) while the prompt sets the texture and palette; the Glaze paper's
own value could not be confirmed here, so the default is a stated choice, not a citation.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import first_line
from ..tiling import plan_tiles

DEFAULT_STRENGTH = 0.5
DEFAULT_STEPS = 30
DEFAULT_GUIDANCE = 7.5


def load_img2img_pipeline(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Any:
    """A local diffusers Stable Diffusion folder as an img2img pipeline (offline; no safety checker download)."""
    if not (Path(path).expanduser() / "model_index.json").is_file():
        raise RuntimeError(f"{path} is not a Stable Diffusion folder in diffusers format (it has no model_index.json)")
    try:
        from diffusers import StableDiffusionImg2ImgPipeline
    except ImportError:
        raise RuntimeError("SD targets need diffusers: pip install 'stylecloak[full]'") from None
    device = torch.device(device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # diffusers renames torch_dtype; older ones need it
            pipeline = StableDiffusionImg2ImgPipeline.from_pretrained(
                str(Path(path).expanduser()),
                torch_dtype=dtype,
                safety_checker=None,
                requires_safety_checker=False,
                local_files_only=True,
            )
    except (OSError, ValueError) as exc:
        first = first_line(exc)
        raise RuntimeError(f"cannot load a Stable Diffusion pipeline from {path}: {first}") from None
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


@dataclass
class SDImg2ImgTarget:
    pipeline: Any
    prompt: str
    strength: float = DEFAULT_STRENGTH
    steps: int = DEFAULT_STEPS
    guidance_scale: float = DEFAULT_GUIDANCE
    tile_size: int = 512
    overlap: int = 64

    def __post_init__(self) -> None:
        if not self.prompt.strip():
            raise ValueError('an SD target needs a style prompt: --target sd:"oil painting with thick brushstrokes"')
        if not 0 < self.strength <= 1:
            raise ValueError(f"img2img strength must be in (0, 1], got {self.strength}")

    @property
    def name(self) -> str:
        return f"sd:{self.prompt}|strength={self.strength}|steps={self.steps}|cfg={self.guidance_scale}"

    @property
    def description(self) -> str:
        return f"Stable Diffusion img2img with the prompt {self.prompt!r} (strength {self.strength})"

    @torch.no_grad()
    def render(self, image: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """The artwork (1x3xHxW in [0, 1]) re-rendered with the prompt, same size, in [0, 1]."""
        height, width = image.shape[-2:]
        device = self.pipeline.device
        total = torch.zeros(1, 3, height, width)
        weight = torch.zeros(1, 1, height, width)
        # Crops of at most tile_size: cores of tile_size - 2 * overlap, with the overlap as context.
        for number, tile in enumerate(plan_tiles(height, width, self.tile_size - 2 * self.overlap, self.overlap, 8)):
            rows, cols = tile.crop
            crop = image[..., rows, cols]
            rendered = self._render_tile(crop.to(device), seed + number)
            ramp = _ramp(crop.shape[-2], crop.shape[-1], self.overlap)
            total[..., rows, cols] += rendered.cpu().float() * ramp
            weight[..., rows, cols] += ramp
        return (total / weight.clamp(min=1e-6)).clamp(0, 1).to(image.device, image.dtype)

    def _render_tile(self, crop: torch.Tensor, seed: int) -> torch.Tensor:
        height, width = crop.shape[-2:]
        padded_h, padded_w = -(-height // 8) * 8, -(-width // 8) * 8
        padded = F.pad(crop, (0, padded_w - width, 0, padded_h - height), mode="replicate")
        generator = torch.Generator(device="cpu").manual_seed(seed)
        output = self.pipeline(
            prompt=self.prompt,
            image=padded.to(self.pipeline.dtype),
            strength=self.strength,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance_scale,
            generator=generator,
            output_type="pt",
        ).images
        return output[..., :height, :width].float()


def _ramp(height: int, width: int, overlap: int) -> torch.Tensor:
    """Blending weights: 1 inside, falling linearly to a small value over ``overlap`` pixels at each edge."""

    def axis(n: int) -> torch.Tensor:
        distance = torch.minimum(torch.arange(n), torch.arange(n).flip(0)).float() + 1
        return (distance / max(1, overlap)).clamp(max=1.0)

    return (axis(height).view(-1, 1) * axis(width).view(1, -1)).view(1, 1, height, width)
