"""Reference-image targets: neural style transfer (Gatys et al.) from the user's own reference images.

The artwork's content (VGG16 relu4_2 features) is kept while the Gram statistics of five VGG16 layers are pulled
to those of the references, e.g. public-domain works in a style far from the artist's. The VGG16 weights are the
ones the LPIPS file already holds, so nothing extra is needed.

Coarse to fine: the stylisation first runs at a working size (long side ``work_long_side``, or the image's own
size if smaller), which sets the composition of colours and strokes; its change, upsampled, is added to the
full-resolution image. Then, for an image larger than the working size, ``refine_steps`` more steps run at the
image's own resolution, tile by tile (each tile with context, only its core kept), so that the target has the
references' texture at the pixel scale the encoder sees instead of an upsampled blur. The references' Gram
statistics are those of the references at their loaded size (256 px): the refinement reproduces their texture
at that pixel scale. Rendering is deterministic (Adam from the image itself, no noise) and, through the target
cache, done once per image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..descriptors import gram_matrix, resize_long_side
from ..imaging import ImageInputError, image_to_tensor, list_images, load_image
from ..models.vgg import VGG16Features, imagenet_normalize
from ..tiling import plan_tiles

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"


@dataclass
class ReferenceStyleTransfer:
    """A :class:`~stylecloak.targets.base.TargetStyle` made from reference images."""

    vgg: VGG16Features
    style_grams: dict[str, torch.Tensor]
    name: str
    description: str
    steps: int = 60
    learning_rate: float = 0.03
    style_weight: float = 1e4
    work_long_side: int = 256
    layers: tuple[str, ...] = field(default=STYLE_LAYERS)
    # The fine pass at the image's own resolution (0: none), on tiles of refine_tile px with refine_context px of
    # context each side (VGG's deeper features see far; the context keeps the tiles' seams from showing).
    refine_steps: int = 15
    refine_tile: int = 384
    refine_context: int = 64

    def render(self, image: torch.Tensor, seed: int = 0) -> torch.Tensor:
        del seed  # deterministic without randomness: the optimisation starts from the image itself
        height, width = image.shape[-2:]
        small = resize_long_side(image, min(self.work_long_side, max(height, width)))
        stylised = self._stylise(small, small, self.steps)
        change = F.interpolate(stylised - small, size=(height, width), mode="bilinear", align_corners=False)
        result = (image + change).clamp(0, 1)
        if self.refine_steps and max(height, width) > max(small.shape[-2:]):
            result = self._refine(image, result)
        return result

    def _stylise(self, content_image: torch.Tensor, start: torch.Tensor, steps: int) -> torch.Tensor:
        """Adam on the pixels of ``start``: the content of ``content_image``, the references' Gram statistics."""
        with torch.no_grad():
            content = self.vgg(imagenet_normalize(content_image), (CONTENT_LAYER,))[CONTENT_LAYER]
        stylised = start.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([stylised], lr=self.learning_rate)
        for _ in range(steps):
            optimizer.zero_grad()
            features = self.vgg(imagenet_normalize(stylised), (*self.layers, CONTENT_LAYER))
            content_loss = F.mse_loss(features[CONTENT_LAYER], content)
            # Each layer's error relative to its reference Gram's size, so that no layer drowns the others.
            style_loss = sum(
                F.mse_loss(gram_matrix(features[layer])[0], self.style_grams[layer])
                / self.style_grams[layer].pow(2).mean()
                for layer in self.layers
            )
            (content_loss + self.style_weight * style_loss).backward()
            optimizer.step()
            with torch.no_grad():
                stylised.clamp_(0, 1)
        return stylised.detach()

    def _refine(self, image: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """The fine pass: each tile starts from the coarse result and keeps the original's content."""
        refined = coarse.clone()
        for tile in plan_tiles(image.shape[-2], image.shape[-1], self.refine_tile, self.refine_context, 8):
            rows, cols = tile.crop
            result = self._stylise(image[..., rows, cols], coarse[..., rows, cols], self.refine_steps)
            core_rows, core_cols = tile.core_in_crop
            refined[..., tile.core[0], tile.core[1]] = result[..., core_rows, core_cols]
        return refined


def load_reference_images(folder: str | Path, long_side: int = 256) -> list[torch.Tensor]:
    """The readable images in ``folder`` at ``long_side`` (unreadable files are skipped; none at all is an error)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageInputError(f"{folder}: not a folder of reference images")
    images = []
    for path in list_images(folder):
        if path.name.startswith("."):
            continue
        try:
            images.append(resize_long_side(image_to_tensor(load_image(path).rgb), long_side))
        except (ImageInputError, OSError):
            continue
    if not images:
        raise ImageInputError(f"{folder}: no readable reference images")
    return images


def reference_transfer(
    vgg: VGG16Features, references: Sequence[torch.Tensor], label: str = "references", **options: object
) -> ReferenceStyleTransfer:
    """A style-transfer target whose style is the mean Gram statistics of ``references``. Its name carries a
    hash of the references, so that the target cache tells different reference sets apart."""
    digest = hashlib.sha256()
    grams: dict[str, list[torch.Tensor]] = {layer: [] for layer in STYLE_LAYERS}
    with torch.no_grad():
        for reference in references:
            digest.update(torch.round(reference * 255).to(torch.uint8).numpy().tobytes())
            features = vgg(imagenet_normalize(reference), STYLE_LAYERS)
            for layer in STYLE_LAYERS:
                grams[layer].append(gram_matrix(features[layer])[0])
    mean_grams = {layer: torch.stack(values).mean(dim=0) for layer, values in grams.items()}
    description = f"neural style transfer from {len(references)} reference image(s) ({label})"
    transfer = ReferenceStyleTransfer(vgg, mean_grams, f"refs-{digest.hexdigest()[:10]}", description, **options)  # type: ignore[arg-type]
    if transfer.refine_steps:
        # The name keys the target cache: renders with and without the fine pass must not be mistaken for each other.
        transfer.name += f"-fine{transfer.refine_steps}"
    return transfer
