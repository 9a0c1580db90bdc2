"""Procedural "paintings" for training the surrogate diffusion model without any art (experimental).

The denoiser-aware cloak term (:mod:`stylecloak.models.surrogate`) needs a diffusion model of the encoder's
latent space. Trained on real paintings, it has seen art that an evaluator's mimic may also see, and its weights
carry that art. These images come from a seeded generator alone: colour fields, gradients, soft and crisp
shapes, outlines, strokes that follow a flow field, and grain, in palettes drawn at random. Nothing in them comes
from any artwork, so a surrogate trained on them (and on their renditions in the catalogue's styles) is a corpus
that no mimic has seen in any form, and it can be rebuilt anywhere from a seed.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from ..imaging import image_to_tensor

# Aspect ratios (width / height) of the canvases: square, landscape and portrait formats.
_ASPECTS = (1.0, 4 / 3, 3 / 4, 3 / 2, 2 / 3)


def synthetic_paintings(count: int, long_side: int = 256, seed: int = 0) -> list[torch.Tensor]:
    """``count`` procedural images (1x3xHxW in [0, 1], long side ``long_side``), the same for the same seed."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if long_side < 32:
        raise ValueError(f"long_side must be >= 32 px, got {long_side}")
    return [synthetic_painting(long_side, np.random.default_rng([seed, index])) for index in range(count)]


def synthetic_painting(long_side: int, rng: np.random.Generator) -> torch.Tensor:
    """One procedural image drawn from ``rng`` (see the module docstring)."""
    aspect = float(rng.choice(_ASPECTS))
    width, height = (long_side, round(long_side / aspect)) if aspect >= 1 else (round(long_side * aspect), long_side)
    palette = _palette(rng)
    canvas = _background(width, height, palette, rng)
    image = Image.fromarray(_to_uint8(canvas))
    for _ in range(int(rng.integers(2, 9))):
        image = _shape_layer(image, palette, rng)
    if rng.random() < 0.7:
        image = _strokes(image, palette, rng)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    grain = float(rng.choice([0.0, 0.01, 0.03, 0.06]))
    if grain > 0:
        pixels = pixels + rng.normal(0.0, grain, pixels.shape).astype(np.float32)
    return image_to_tensor(np.clip(pixels, 0.0, 1.0))


def _palette(rng: np.random.Generator) -> np.ndarray:
    """3-7 colours around a few hues, muted or saturated, light or dark (an artist's palette, roughly)."""
    base_hue = rng.random()
    saturation = float(rng.choice([0.15, 0.35, 0.6, 0.85]))
    colours = []
    for _ in range(int(rng.integers(3, 8))):
        hue = (base_hue + rng.choice([0.0, 0.08, 0.5, 0.33]) + rng.normal(0, 0.04)) % 1.0
        sat = float(np.clip(saturation + rng.normal(0, 0.15), 0, 1))
        value = float(np.clip(rng.beta(2.5, 1.5), 0.05, 1))
        colours.append(colorsys.hsv_to_rgb(hue, sat, value))
    return np.array(colours, dtype=np.float32)


def _background(width: int, height: int, palette: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A gradient between two palette colours at a random angle, with low-frequency variation."""
    first, second = palette[rng.choice(len(palette), 2, replace=False)]
    angle = rng.random() * 2 * math.pi
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (xs / width) * math.cos(angle) + (ys / height) * math.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    canvas = first[None, None] * (1 - ramp[..., None]) + second[None, None] * ramp[..., None]
    cells = int(rng.integers(2, 9))
    low = rng.normal(0, float(rng.choice([0.02, 0.06, 0.12])), (cells, cells, 3)).astype(np.float32)
    variation = np.stack(
        [np.asarray(Image.fromarray(low[..., c]).resize((width, height), Image.BICUBIC)) for c in range(3)], -1
    )
    return np.clip(canvas + variation, 0, 1)


def _shape_layer(image: Image.Image, palette: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A filled ellipse, polygon or band, crisp or soft, sometimes outlined, blended at a random opacity."""
    width, height = image.size
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    colour = tuple(int(255 * c) for c in np.clip(palette[rng.integers(len(palette))] + rng.normal(0, 0.05, 3), 0, 1))
    alpha = int(255 * rng.uniform(0.5, 1.0))
    outline = (20, 20, 20, 255) if rng.random() < 0.3 else None
    line_width = int(rng.integers(1, 4))
    kind = rng.integers(3)
    cx, cy = rng.random() * width, rng.random() * height
    size = rng.uniform(0.08, 0.6) * max(width, height)
    if kind == 0:
        rx, ry = size * rng.uniform(0.3, 1), size * rng.uniform(0.3, 1)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=(*colour, alpha), outline=outline, width=line_width)
    elif kind == 1:
        corners = int(rng.integers(3, 8))
        angles = np.sort(rng.random(corners)) * 2 * math.pi
        radii = size * rng.uniform(0.4, 1.0, corners)
        points = [(cx + r * math.cos(a), cy + r * math.sin(a)) for r, a in zip(radii, angles)]
        draw.polygon(points, fill=(*colour, alpha), outline=outline, width=line_width)
    else:  # a band across the canvas: a horizon, a field, a wave
        y0 = rng.random() * height
        amplitude, period = rng.uniform(0, 0.1) * height, rng.uniform(0.3, 2.0) * width
        phase = rng.random() * 2 * math.pi
        top = [(x, y0 + amplitude * math.sin(2 * math.pi * x / period + phase)) for x in range(0, width + 8, 8)]
        draw.polygon(top + [(width, height), (0, height)], fill=(*colour, alpha), outline=outline, width=line_width)
    if rng.random() < 0.5:
        layer = layer.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 6.0))))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _strokes(image: Image.Image, palette: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Short strokes along a smooth flow field (brushwork, hatching or grass), in palette colours."""
    width, height = image.size
    draw = ImageDraw.Draw(image)
    base_angle, swirl = rng.random() * math.pi, rng.uniform(0, 3)
    length = rng.uniform(0.01, 0.08) * max(width, height)
    stroke_width = int(rng.integers(1, 6))
    for _ in range(int(rng.integers(50, 800))):
        x, y = rng.random() * width, rng.random() * height
        angle = base_angle + swirl * math.sin(x / width * 3 + y / height * 2)
        dx, dy = length * math.cos(angle), length * math.sin(angle)
        colour = np.clip(palette[rng.integers(len(palette))] + rng.normal(0, 0.06, 3), 0, 1)
        draw.line((x, y, x + dx, y + dy), fill=tuple(int(255 * c) for c in colour), width=stroke_width)
    return image


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    # Half up, not imaging.quantize_rgb's half to even: 12 of 48 images differ by one level at ties, and the
    # surrogates measured in docs/protection.md were drawn with this rounding.
    return (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)
