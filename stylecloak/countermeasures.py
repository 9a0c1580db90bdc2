"""Countermeasures a mimic may apply to scraped art before training (docs/metrics.md, robustness).

Each takes and returns a 1x3xHxW image in [0, 1], and returns 8-bit values, as a file on disk would hold.
The robustness table is data: :data:`COUNTERMEASURES` is an ordered list of named :class:`Countermeasure`
entries, each a function of ``(image, encoder)``, so that a report loops over it instead of naming each one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .imaging import image_to_tensor, quantize_8bit, quantize_rgb, tensor_to_image
from .models.encoders import LatentEncoder
from .models.tiled import DECODE_CONTEXT_LATENT, DECODE_TILE_LATENT, TiledDecoder, TiledEncoder


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Re-encode as JPEG at ``quality`` with Pillow's defaults (4:2:0 chroma subsampling, as most sites do)."""
    buffer = io.BytesIO()
    Image.fromarray(quantize_rgb(tensor_to_image(image))).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        rgb = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255.0
    return image_to_tensor(rgb).to(image.device)


def gaussian_noise(image: torch.Tensor, sigma_255: float, seed: int = 0) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``sigma_255`` (in 8-bit levels), then save as 8 bits.

    The noise comes from a CPU generator seeded with ``seed``, so that the result is the same on every device.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(image.shape, generator=generator, dtype=torch.float32) * (sigma_255 / 255.0)
    return quantize_8bit(image + noise.to(device=image.device, dtype=image.dtype))


def downscale_upscale(image: torch.Tensor, factor: float = 0.5) -> torch.Tensor:
    """Resize to ``factor`` (antialiased bicubic, saved as 8 bits), then back to the original size (bicubic).

    A scraper's thumbnail pipeline, or a mimic who trains at a lower resolution and upsamples back: it wipes
    out detail finer than the small image can hold.
    """
    if not 0 < factor <= 1:
        raise ValueError(f"factor must be in (0, 1], got {factor}")
    height, width = image.shape[-2:]
    small_size = (max(1, round(height * factor)), max(1, round(width * factor)))
    small = quantize_8bit(F.interpolate(image, size=small_size, mode="bicubic", antialias=True, align_corners=False))
    return quantize_8bit(F.interpolate(small, size=(height, width), mode="bicubic", align_corners=False))


def downscale(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Shrink by ``factor`` (antialiased bicubic, as training pipelines resize) and save as 8 bits: the image a
    mimic that trains at 1/``factor`` of the posted size actually learns from."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if factor == 1:
        return quantize_8bit(image)
    height, width = image.shape[-2:]
    size = (max(1, round(height / factor)), max(1, round(width / factor)))
    return quantize_8bit(F.interpolate(image, size=size, mode="bicubic", antialias=True, align_corners=False))


def _gaussian_kernel(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))  # +-3 sigma holds 99.7% of the weight
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def gaussian_blur(image: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Separable Gaussian blur with standard deviation ``sigma`` pixels (reflect padding), saved as 8 bits."""
    return quantize_8bit(gaussian_filter(image, sigma))


def gaussian_filter(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """The Gaussian blur of :func:`gaussian_blur` in float, not rounded to 8 bits."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    kernel = _gaussian_kernel(sigma, image.dtype, image.device)
    radius = kernel.numel() // 2
    channels = image.shape[1]
    height, width = image.shape[-2:]
    # Reflect padding needs the image to be larger than the pad; a tiny image falls back to repeating its edge.
    mode = "reflect" if radius < height and radius < width else "replicate"
    padded = F.pad(image, (radius, radius, radius, radius), mode=mode)
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def noise_then_upscale(image: torch.Tensor, sigma_255: float = 8.0, factor: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Noise of ``sigma_255`` levels, then the ``factor`` down-and-up resize of :func:`downscale_upscale`.

    A cheap stand-in for "add noise, then let an upscaler clean it up" (the attack that broke early Glaze
    versions): we have no learned upscaler here, so the antialiased downscale does the denoising and bicubic
    does the upscaling. A learned upscaler would restore more detail, and possibly more of the cloak.
    """
    return downscale_upscale(gaussian_noise(image, sigma_255, seed), factor)


def decode_latents(
    encoder: LatentEncoder,
    latents: torch.Tensor,
    height: int,
    width: int,
    tile_latent: int = DECODE_TILE_LATENT,
    context_latent: int = DECODE_CONTEXT_LATENT,
) -> torch.Tensor:
    """The decoder's image of ``latents`` at ``height`` x ``width``, in [0, 1], with bounded memory.

    Small maps decode at once. Larger ones decode tile by tile: for the TAESD family the latent-resolution head
    runs on the whole map (so TAEF2's global GroupNorm sees what it would in one pass) and only the local
    upsampling layers are tiled, which matches a whole-image decode. Other decoders are decoded tile by tile
    with context as they are, which is exact for fully convolutional decoders and close otherwise.
    """
    decoder = TiledDecoder(encoder, tile_latent, context_latent)
    return decoder.decode(latents)[..., :height, :width].clamp(0, 1)


def encoder_decoder_round_trip(image: torch.Tensor, encoder: LatentEncoder, tile_size: int = 512) -> torch.Tensor:
    """``decode(encode(image))``, clamped and saved as 8 bits: what a mimic gets by passing the art through the
    model's own autoencoder (a purifier that keeps only what the latent holds). Encoding and decoding both run
    in tiles, so a large image needs about as much memory as a cloak of it."""
    height, width = image.shape[-2:]
    latents = TiledEncoder(encoder, height, width, tile_size).encode(image)
    return quantize_8bit(decode_latents(encoder, latents, height, width))


CountermeasureFn = Callable[[torch.Tensor, "LatentEncoder | None"], torch.Tensor]


@dataclass(frozen=True)
class Countermeasure:
    """One row of the robustness table: a name for reports, what it does in words, and the function."""

    name: str
    description: str
    apply: CountermeasureFn
    needs_decoder: bool = False

    def available(self, encoder: LatentEncoder | None) -> bool:
        return not self.needs_decoder or (encoder is not None and encoder.can_decode)


def _round_trip(image: torch.Tensor, encoder: LatentEncoder | None) -> torch.Tensor:
    if encoder is None:
        raise ValueError("the encoder-decoder round trip needs an encoder")
    return encoder_decoder_round_trip(image, encoder)


# The noise seed is fixed, so that a robustness table is reproducible from the images alone.
COUNTERMEASURE_SEED = 0

COUNTERMEASURES: tuple[Countermeasure, ...] = (
    Countermeasure("jpeg95", "JPEG at quality 95", lambda x, e: jpeg(x, 95)),
    Countermeasure("jpeg85", "JPEG at quality 85", lambda x, e: jpeg(x, 85)),
    Countermeasure("jpeg75", "JPEG at quality 75", lambda x, e: jpeg(x, 75)),
    Countermeasure("noise2", "Gaussian noise, sigma 2 of 255", lambda x, e: gaussian_noise(x, 2, COUNTERMEASURE_SEED)),
    Countermeasure("noise4", "Gaussian noise, sigma 4 of 255", lambda x, e: gaussian_noise(x, 4, COUNTERMEASURE_SEED)),
    Countermeasure("noise8", "Gaussian noise, sigma 8 of 255", lambda x, e: gaussian_noise(x, 8, COUNTERMEASURE_SEED)),
    Countermeasure("downscale50", "downscale to 50% and back up (bicubic)", lambda x, e: downscale_upscale(x, 0.5)),
    Countermeasure("blur1", "Gaussian blur, sigma 1 px", lambda x, e: gaussian_blur(x, 1.0)),
    Countermeasure("noise8+upscale", "noise sigma 8, then 50% down and bicubic up (a stand-in for an upscaler)",
                   lambda x, e: noise_then_upscale(x, 8.0, 0.5, COUNTERMEASURE_SEED)),
    Countermeasure("vae_roundtrip", "encode and decode with the attacked model's autoencoder", _round_trip, needs_decoder=True),
)  # fmt: skip


def get_countermeasure(name: str) -> Countermeasure:
    for countermeasure in COUNTERMEASURES:
        if countermeasure.name == name:
            return countermeasure
    raise KeyError(f"unknown countermeasure {name!r}; known: {', '.join(c.name for c in COUNTERMEASURES)}")
