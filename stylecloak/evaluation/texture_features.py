"""Texture statistics that ignore colour: the features of the second, independent judge.

The first judge reads VGG16 Gram matrices, which carry colour and which a VGG-based cloak objective could
fool along with it. This one shares nothing with VGG and sees no hue: on the luminance alone, at the same
working size and detail bottleneck as the Gram features, it measures
- how strokes run: histograms of gradient orientation (8 bins, weighted by gradient magnitude) at three scales;
- how strong edges are: quantiles of the gradient magnitude at the same scales;
- how fine the texture is: the image's power in eight radial frequency bands (log, normalised);
- how the tones spread: quantiles of luminance and of local contrast.
A mimic that learned hatching or stippling from a cloak moves these, whatever the palette; a mimic that only
kept the palette does not. Each family is one block, so that a head can weigh the families equally.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..descriptors import resize_long_side
from .style_features import DETAIL_LONG_SIDE, TRAINING_VIEWS, WORKING_LONG_SIDE, _content_key, training_view

_QUANTILES = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9])
_SCALES = (1, 2, 4)
_ORIENTATION_BINS = 8
_RADIAL_BANDS = 8


def _luminance(image: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype).view(1, 3, 1, 1)
    return (image * weights).sum(dim=1, keepdim=True)


def _gradients(luma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    kernel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3) / 8
    padded = F.pad(luma, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kernel_x), F.conv2d(padded, kernel_x.transpose(-1, -2))


def _orientation_and_strength(luma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    histograms, strengths = [], []
    for scale in _SCALES:
        level = F.avg_pool2d(luma, scale) if scale > 1 else luma
        gx, gy = _gradients(level)
        magnitude = (gx**2 + gy**2).sqrt().flatten()
        # Orientation modulo pi (a stroke has no direction), magnitude-weighted, as in HOG.
        angle = torch.atan2(gy, gx).flatten().remainder(torch.pi)
        bins = (angle / torch.pi * _ORIENTATION_BINS).long().clamp(max=_ORIENTATION_BINS - 1)
        histogram = torch.zeros(_ORIENTATION_BINS).index_add_(0, bins, magnitude)
        histograms.append(histogram / histogram.sum().clamp_min(1e-8))
        strengths.append(torch.quantile(magnitude, _QUANTILES) * 4)
    return torch.cat(histograms), torch.cat(strengths)


def _radial_power(luma: torch.Tensor) -> torch.Tensor:
    plane = luma[0, 0] - luma.mean()
    height, width = plane.shape
    window = torch.hann_window(height, periodic=False)[:, None] * torch.hann_window(width, periodic=False)[None, :]
    power = torch.fft.fftshift(torch.fft.fft2(plane * window)).abs() ** 2
    rows = torch.arange(height, dtype=torch.float32) - height // 2
    cols = torch.arange(width, dtype=torch.float32) - width // 2
    radius = (rows[:, None] ** 2 / (height / 2) ** 2 + cols[None, :] ** 2 / (width / 2) ** 2).sqrt()
    band = (radius * _RADIAL_BANDS).long()
    keep = band < _RADIAL_BANDS
    sums = torch.zeros(_RADIAL_BANDS).index_add_(0, band[keep], power[keep])
    log_power = (sums + 1e-8).log()
    return log_power - log_power.mean()  # the shape of the spectrum, not the image's overall contrast


def _tones(luma: torch.Tensor) -> torch.Tensor:
    local_mean = F.avg_pool2d(F.pad(luma, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    contrast = (luma - local_mean).abs().flatten()
    return torch.cat([torch.quantile(luma.flatten(), _QUANTILES), torch.quantile(contrast, _QUANTILES) * 4])


@dataclass
class TextureFeatureExtractor:
    """One feature vector per image from the luminance alone (see the module's notes); the same interface as
    :class:`~stylecloak.evaluation.style_features.GramFeatureExtractor`, so the same heads serve it."""

    long_side: int = WORKING_LONG_SIDE
    detail_side: int | None = DETAIL_LONG_SIDE
    views: int = TRAINING_VIEWS
    seed: int = 0
    _views: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        scales = len(_SCALES)
        self.block_sizes = (_ORIENTATION_BINS * scales, len(_QUANTILES) * scales, _RADIAL_BANDS, 2 * len(_QUANTILES))

    def _normalise(self, image: torch.Tensor) -> torch.Tensor:
        image = image.detach().to("cpu", torch.float32).clamp(0, 1)
        if self.detail_side is not None:
            image = resize_long_side(image, min(self.detail_side, max(image.shape[-2:])))
        return resize_long_side(image, self.long_side)

    @staticmethod
    def _describe(working: torch.Tensor) -> torch.Tensor:
        luma = _luminance(working)
        orientation, strength = _orientation_and_strength(luma)
        return torch.cat([orientation, strength, _radial_power(luma), _tones(luma)])

    def features(self, image: torch.Tensor) -> torch.Tensor:
        return self._describe(self._normalise(image))

    def training_features(self, image: torch.Tensor) -> torch.Tensor:
        """(1 + views) x D: the plain image, then the same random views as the Gram features take."""
        key = _content_key(image)
        if key not in self._views:
            rng = random.Random(f"{self.seed}:{key}")
            working = self._normalise(image)
            rows = [self._describe(working)] + [
                self._describe(training_view(working, rng, index)) for index in range(self.views)
            ]
            self._views[key] = torch.stack(rows)
        return self._views[key]
