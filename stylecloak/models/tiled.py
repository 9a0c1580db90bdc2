"""Encode images of any size with bounded memory, and with the same result as one whole-image pass.

An encoder is split into a *stem* (full-resolution layers, local: each output cell depends on a window of
pixels) and a *head* (layers at latent resolution, which may be global: TAEF2's GroupNorm normalises over the
whole map). The stem runs tile by tile, each tile with enough context that its core matches a whole-image pass;
the cores are assembled into one latent-resolution feature map, and the head runs on that map at once. The head
works at 1/64 of the pixels, so its memory stays small even for very large images.

Gradients follow the same route backwards (as in gradient checkpointing): the head's backward gives the
gradient of the loss with respect to the assembled features; each tile's stem is then recomputed with autograd
and back-propagated with its core's share of that gradient, accumulating into the image's gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..tiling import Tile, plan_tiles
from .encoders import LatentEncoder, pad_to_multiple


class TiledEncoder:
    """A :class:`LatentEncoder` applied to one image size, tile by tile."""

    def __init__(self, encoder: LatentEncoder, height: int, width: int, tile_size: int = 512) -> None:
        self.encoder = encoder
        self.stem, self.head = encoder.split()
        self.height, self.width = height, width
        self.tiles: list[Tile] = plan_tiles(height, width, tile_size, encoder.stem_context_px, encoder.downscale)

    @property
    def single_tile(self) -> bool:
        return len(self.tiles) == 1

    def _stem_tile(self, image: torch.Tensor, tile: Tile) -> torch.Tensor:
        rows, cols = tile.crop
        features = self.stem(pad_to_multiple(image[..., rows, cols], self.encoder.downscale))
        lat_rows, lat_cols = tile.core_in_crop_latent(self.encoder.downscale)
        return features[..., lat_rows, lat_cols]

    def stem_features(self, image: torch.Tensor) -> torch.Tensor:
        """The stem's output for the whole image, assembled from tiles (differentiable if grad is enabled)."""
        if self.single_tile:
            return self._stem_tile(image, self.tiles[0])
        rows = []
        for row_tiles in _rows(self.tiles):
            rows.append(torch.cat([self._stem_tile(image, tile) for tile in row_tiles], dim=-1))
        return torch.cat(rows, dim=-2)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Latents of the whole image, without gradient."""
        with torch.no_grad():
            return self.head(self.stem_features(image))

    def backward(self, image: torch.Tensor, latent_loss: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Compute ``latent_loss(E(image))`` and back-propagate it into ``image`` (a leaf or a function of one).

        Returns the loss value (detached). Memory is bounded by one tile's stem plus the latent-size head.
        """
        if self.single_tile:
            loss = latent_loss(self.head(self.stem_features(image)))
            loss.backward()
            return loss.detach()
        with torch.no_grad():
            features = self.stem_features(image)
        features.requires_grad_(True)
        loss = latent_loss(self.head(features))
        loss.backward()
        feature_grad = features.grad
        assert feature_grad is not None
        for tile in self.tiles:
            rows, cols = tile.core_latent(self.encoder.downscale)
            core = self._stem_tile(image, tile)
            core.backward(feature_grad[..., rows, cols])
        return loss.detach()


def _rows(tiles: list[Tile]) -> list[list[Tile]]:
    """Group tiles (planned row by row) into rows."""
    grouped: dict[int, list[Tile]] = {}
    for tile in tiles:
        grouped.setdefault(tile.core_top, []).append(tile)
    return list(grouped.values())
