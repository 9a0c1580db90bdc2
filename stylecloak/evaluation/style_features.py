"""VGG16 Gram-matrix style features that stay comparable between sharp paintings and a mimic's small outputs.

The features are the style signature of Gatys et al., from the LPIPS package's VGG16 weights. A mimic's outputs
are small (64-128 px) and soft, while training paintings are sharp. Two things keep the features usable on such
images:

- every image is described at the same small working size (``long_side``, 128 px), after passing through a
  ``detail_side`` bottleneck (shrunk to 96 px and back): a sharp painting and a blurry 128 px image then carry
  the same level of detail, so the features measure style, not sharpness;
- training adds random views of each image (crops at the same pixel scale, and copies shrunk and blurred
  further), so that 21 paintings give a few hundred samples and the heads see the variation they will meet.

Images are 1x3xHxW float tensors in [0, 1].
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

import torch

from ..countermeasures import gaussian_filter
from ..descriptors import GRAM_LAYERS, gram_matrix, resize_long_side
from ..models.vgg import VGG16Features, imagenet_normalize

WORKING_LONG_SIDE = 128
DETAIL_LONG_SIDE = 96
TRAINING_VIEWS = 6


def degrade(image: torch.Tensor, long_side: int, sigma: float = 0.0) -> torch.Tensor:
    """Shrink (never enlarge) to ``long_side`` and blur by ``sigma`` px: roughly how a small mimic's output looks."""
    if max(image.shape[-2:]) > long_side:
        image = resize_long_side(image, long_side)
    return (gaussian_filter(image, sigma) if sigma > 0 else image).clamp(0, 1)


def _content_key(image: torch.Tensor) -> str:
    data = image.detach().to("cpu", torch.float32).contiguous()
    digest = hashlib.sha1(data.numpy().tobytes())
    digest.update(str(tuple(data.shape)).encode())
    return digest.hexdigest()


def training_view(working: torch.Tensor, rng: random.Random, index: int) -> torch.Tensor:
    """One augmented view of an image at working size. Even views: a crop of 60-90% of each side at the same
    pixel scale (texture scale is part of style). Odd views: the whole image shrunk to 50-90% and blurred a
    little, then back to working size (a softer, smaller rendering, as a mimic produces)."""
    height, width = working.shape[-2:]
    if index % 2 == 0:
        fraction = rng.uniform(0.6, 0.9)
        crop_h, crop_w = max(16, round(height * fraction)), max(16, round(width * fraction))
        crop_h, crop_w = min(crop_h, height), min(crop_w, width)
        top, left = rng.randint(0, height - crop_h), rng.randint(0, width - crop_w)
        return working[..., top : top + crop_h, left : left + crop_w]
    side = max(16, round(max(height, width) * rng.uniform(0.5, 0.9)))
    soft = degrade(working, side, rng.uniform(0.0, 1.0))
    return resize_long_side(soft, max(height, width))


@dataclass
class GramFeatureExtractor:
    """One feature vector per image: the signed square root of each layer's VGG16 Gram matrix (upper
    triangle, scaled by 1/C as in :class:`~stylecloak.descriptors.GramDescriptor`), concatenated by layer.

    ``block_sizes`` gives each layer's share of the vector, so that heads can weigh layers equally (otherwise
    relu4_3's 131k entries would drown relu1_2's 2k). Features are cached by image content: cross-validation
    refits the head many times on the same images, and VGG is the slow part.
    """

    vgg: VGG16Features
    layers: tuple[str, ...] = GRAM_LAYERS
    long_side: int = WORKING_LONG_SIDE
    detail_side: int | None = DETAIL_LONG_SIDE
    views: int = TRAINING_VIEWS
    seed: int = 0
    cache: bool = True
    _plain: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)
    _views: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.long_side < 16:
            raise ValueError(f"long_side must be at least 16 px, got {self.long_side}")
        if self.detail_side is not None and not 8 <= self.detail_side <= self.long_side:
            raise ValueError(f"detail_side must lie between 8 and long_side ({self.long_side}), got {self.detail_side}")
        if self.views < 0:
            raise ValueError(f"views must be 0 or more, got {self.views}")
        channels = {"relu1_2": 64, "relu2_2": 128, "relu3_3": 256, "relu4_3": 512}
        unknown = [layer for layer in self.layers if layer not in channels]
        if unknown or not self.layers:
            raise ValueError(f"layers must be among {', '.join(channels)}, got {', '.join(self.layers) or 'none'}")
        self.block_sizes = tuple(channels[layer] * (channels[layer] + 1) // 2 for layer in self.layers)
        self._device = next(self.vgg.parameters()).device

    def _normalise(self, image: torch.Tensor) -> torch.Tensor:
        """The working size, through the detail bottleneck (see the module's notes)."""
        image = image.to(self._device, torch.float32).clamp(0, 1)
        if self.detail_side is not None:
            image = resize_long_side(image, min(self.detail_side, max(image.shape[-2:])))
        return resize_long_side(image, self.long_side)

    @torch.no_grad()
    def _describe(self, working: torch.Tensor) -> torch.Tensor:
        activations = self.vgg(imagenet_normalize(working), self.layers)
        parts = []
        for layer in self.layers:
            gram = gram_matrix(activations[layer])[0]
            rows, cols = torch.triu_indices(gram.shape[0], gram.shape[0], device=gram.device)
            upper = gram[rows, cols]
            parts.append(upper.sign() * upper.abs().sqrt() / gram.shape[0])
        return torch.cat(parts).cpu()

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """The D-vector of one 1x3xHxW image, as used at prediction time."""
        key = _content_key(image) if self.cache else ""
        if key in self._plain:
            return self._plain[key]
        vector = self._describe(self._normalise(image))
        if self.cache:
            self._plain[key] = vector
        return vector

    def training_features(self, image: torch.Tensor) -> torch.Tensor:
        """(1 + views) x D: the plain image, then random views of it (deterministic for a seed and image)."""
        key = _content_key(image)
        if self.cache and key in self._views:
            return self._views[key]
        rng = random.Random(f"{self.seed}:{key}")
        working = self._normalise(image)
        rows = [self.features(image)]
        for index in range(self.views):
            rows.append(self._describe(training_view(working, rng, index)))
        stacked = torch.stack(rows)
        if self.cache:
            self._views[key] = stacked
        return stacked

    def clear_cache(self) -> None:
        self._plain.clear()
        self._views.clear()
