"""Mimicry with a real model: LoRA fine-tuning of a local diffusers Stable Diffusion pipeline (``stylecloak
mimic --attack lora --base PATH``), the way style mimics are made in practice.

For each condition (the artist's clean art, the cloaked art, and the cloaked art after each purifier) a fresh
LoRA (peft, on the UNet's attention projections) is trained on the artist's images with one caption, and the
fine-tuned pipeline then generates images from that caption. The same style judge as the small mimic (trained
on the artist's clean art against the other styles) says whose style each generated image shows; the
protection success rate is the share not attributed to the artist.

The VAE, text encoder and base UNet stay frozen. Latents are the VAE's posterior *sample* times its scaling
factor, as in diffusers' own LoRA training script; the loss is the scheduler's (epsilon or v) prediction MSE.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import first_line
from ..models.encoders import LatentEncoder
from .attack import (
    MimicryReport,
    MimicryRequest,
    attack_conditions,
    check_attack_inputs,
    fit_judge_on_images,
    fit_second_judge,
    judge_condition,
)
from .mimic import centre_square, resize_classes, resize_for_mimic


@dataclass(frozen=True)
class LoraMimicConfig:
    steps: int = 400
    rank: int = 4
    learning_rate: float = 1e-4
    resolution: int = 512
    batch: int = 1
    samples: int = 8
    inference_steps: int = 30
    guidance_scale: float = 7.5
    caption: str = "a painting in the style of sks artist"
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"attack": "lora"}


def load_text2img_pipeline(base: str | Path, device: torch.device) -> Any:
    try:
        from diffusers import StableDiffusionPipeline
    except ImportError:
        raise RuntimeError("LoRA mimicry needs diffusers and peft: pip install 'stylecloak[full]'") from None
    try:
        pipeline = StableDiffusionPipeline.from_pretrained(
            str(base), safety_checker=None, requires_safety_checker=False, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        first = first_line(exc)
        raise RuntimeError(f"cannot load a Stable Diffusion pipeline from {base}: {first}") from None
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


def train_lora(
    pipeline: Any,
    images: Sequence[torch.Tensor],
    config: LoraMimicConfig,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
) -> list[float]:
    """Add a LoRA adapter to ``pipeline.unet`` and train it on ``images`` (1x3xHxW in [0, 1]); returns the losses."""
    try:
        from peft import LoraConfig
    except ImportError:
        raise RuntimeError("LoRA mimicry needs peft: pip install 'stylecloak[full]'") from None
    from diffusers import DDPMScheduler

    generator = torch.Generator().manual_seed(config.seed)
    unet, vae, text_encoder = pipeline.unet, pipeline.vae, pipeline.text_encoder
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    unet.add_adapter(
        LoraConfig(
            r=config.rank,
            lora_alpha=config.rank,
            init_lora_weights="gaussian",
            target_modules=["to_k", "to_q", "to_v", "to_out.0"],
        )
    )
    parameters = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate)
    scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    tokens = pipeline.tokenizer(
        [config.caption],
        padding="max_length",
        max_length=pipeline.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        text = text_encoder(tokens.input_ids.to(device))[0]
    squares = [centre_square(image, config.resolution) for image in images]
    losses = []
    unet.train()
    for step in range(config.steps):
        picks = torch.randint(len(squares), (config.batch,), generator=generator).tolist()
        batch = torch.cat([squares[i] for i in picks]).to(device)
        if bool(torch.rand(1, generator=generator) < 0.5):
            batch = batch.flip(-1)
        with torch.no_grad():
            posterior = vae.encode(batch * 2 - 1).latent_dist
            latents = posterior.sample(generator=None) * vae.config.scaling_factor
        noise = torch.randn(latents.shape, generator=generator).to(device)
        timesteps = torch.randint(scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator).to(
            device
        )
        noisy = scheduler.add_noise(latents, noise, timesteps)
        target = (
            noise
            if scheduler.config.prediction_type == "epsilon"
            else scheduler.get_velocity(latents, noise, timesteps)
        )
        prediction = unet(noisy, timesteps, encoder_hidden_states=text.expand(latents.shape[0], -1, -1)).sample
        loss = F.mse_loss(prediction.float(), target.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, config.steps)
    unet.eval()
    return losses


@torch.no_grad()
def generate(pipeline: Any, config: LoraMimicConfig, device: torch.device) -> list[torch.Tensor]:
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    images = pipeline(
        prompt=[config.caption] * config.samples,
        num_inference_steps=config.inference_steps,
        guidance_scale=config.guidance_scale,
        height=config.resolution,
        width=config.resolution,
        generator=generator,
        output_type="pt",
    ).images
    return [image.unsqueeze(0).float().cpu().clamp(0, 1) for image in images]


def run_lora_mimicry(
    request: MimicryRequest, base: str | Path, config: LoraMimicConfig, encoder: LatentEncoder | None = None
) -> MimicryReport:
    """LoRA mimicry on clean, cloaked and purified-cloaked art; ``encoder`` is needed only by purifiers that
    use one (the VAE round trip)."""
    clean, cloaked, others, judge = request.clean, request.cloaked, request.others, request.judge
    device, out_dir, progress = request.device, request.out_dir, request.progress
    classifier_name = request.judge_name
    check_attack_inputs(clean, cloaked, others)
    size = config.resolution
    small_clean = [resize_for_mimic(image, size) for image in clean]
    small_others = resize_classes(others, size)
    # The judge's extra classes (--judge-renditions) at the training size; the LoRA never sees them.
    extra = resize_classes(request.judge_extra_classes, size)
    sanity = fit_judge_on_images(judge, small_clean, small_others, extra)
    report = MimicryReport(
        len(clean),
        {label: len(images) for label, images in others.items()},
        config,  # type: ignore[arg-type]
        classifier_name,
        sanity,
    )
    fit_second_judge(report, request, lambda second: fit_judge_on_images(second, small_clean, small_others, extra))
    conditions = attack_conditions(request, clean, cloaked, encoder)
    for name, images in conditions:
        started = time.perf_counter()
        pipeline = load_text2img_pipeline(base, device)  # a fresh base for every condition
        step = (lambda done, total, n=name: progress(n, "LoRA", done, total)) if progress else None
        losses = train_lora(pipeline, images, config, device, step)
        samples = generate(pipeline, config, device)
        report.conditions.append(
            judge_condition(name, samples, judge, losses, started, out_dir, request.second_judge, images)
        )
    return report
