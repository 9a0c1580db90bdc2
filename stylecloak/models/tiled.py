"""Encode images of any size with bounded memory, and with the same result as one whole-image pass.

An encoder is split into a *stem* (full-resolution layers, local: each output cell depends on a window of
pixels) and a *head* (layers at latent resolution, which may be global: TAEF2's GroupNorm normalises over the
whole map). The stem runs tile by tile, each tile with enough context that its core matches a whole-image pass;
the cores are assembled into one latent-resolution feature map, and the head runs on that map at once. The head
works at 1/64 of the pixels, so its memory stays small even for very large images.

Gradients follow the same route backwards (as in gradient checkpointing): the head's backward gives the
gradient of the loss with respect to the assembled features; each tile's stem is then recomputed with autograd
and back-propagated with its core's share of that gradient, accumulating into the image's gradient.

Decoding mirrors it (:class:`TiledDecoder`): a TAESD-family decoder's latent-resolution layers run on the whole
map and its local upsampling layers tile by tile, so a tiled decode equals a whole one; a distance to a reference
image is back-propagated one tile's graph at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

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


# Decoding in tiles of this many latent cells a side (512 px for an /8 encoder), each with this many cells of
# context on every side. TAEF2's local decoder layers reach 9 latent cells (measured: with 9 or more cells of
# context a tiled decode equals a whole one, with 8 it is off by 1e-4), so 16 leaves a margin.
DECODE_TILE_LATENT = 64
DECODE_CONTEXT_LATENT = 16


def split_decoder(encoder: LatentEncoder) -> tuple[nn.Module, nn.Module] | None:
    """``(head, tail)`` of a TAESD-family decoder: the latent-resolution layers (TAEF2's GroupNorm there is
    global, so they run on the whole map) and the local upsampling layers (safe to run tile by tile)."""
    decoder = getattr(encoder, "decoder", None)
    if not isinstance(decoder, nn.Sequential):
        return None
    for index, layer in enumerate(decoder):
        if isinstance(layer, nn.Upsample):
            return decoder[:index], decoder[index:]
    return None


class TiledDecoder:
    """The decoder of ``encoder`` with bounded memory: maps larger than ``tile_latent`` cells a side decode tile
    by tile, each with ``context_latent`` cells of context. For the TAESD family the latent-resolution head runs
    on the whole map and only the local upsampling layers are tiled, which matches a whole-image decode; other
    decoders are decoded tile by tile with context as they are (exact for fully convolutional ones). The
    decoded image is the decoder's own size (latent cells times its scale), not cropped; in [0, 1], as the
    encoder's ``decode`` gives it."""

    def __init__(
        self, encoder: LatentEncoder, tile_latent: int = DECODE_TILE_LATENT, context_latent: int = DECODE_CONTEXT_LATENT
    ) -> None:
        if not encoder.can_decode:
            raise NotImplementedError(f"encoder {encoder.name!r} has no decoder")
        self.encoder, self.tile_latent, self.context_latent = encoder, tile_latent, context_latent
        split = split_decoder(encoder)
        self.head, self.tail = split if split is not None else (nn.Identity(), encoder.decode)

    def single_tile(self, latents: torch.Tensor) -> bool:
        """Whether ``latents`` decode in one piece (no tiling)."""
        return max(latents.shape[-2:]) <= self.tile_latent

    def _tiles(self, latents: torch.Tensor) -> list[Tile]:
        return plan_tiles(latents.shape[-2], latents.shape[-1], self.tile_latent, self.context_latent, grid=1)

    def _tile_core(self, features: torch.Tensor, tile: Tile) -> tuple[torch.Tensor, tuple[slice, slice]]:
        """The decoded core of ``tile`` and where it lies in the whole decoded image."""
        rows, cols = tile.crop
        decoded = self.tail(features[..., rows, cols]).clamp(0, 1)  # as the encoder's own decode
        scale = decoded.shape[-1] // (tile.crop_right - tile.crop_left)
        core_rows, core_cols = tile.core_in_crop
        core = decoded[
            ..., core_rows.start * scale : core_rows.stop * scale, core_cols.start * scale : core_cols.stop * scale
        ]
        place = (
            slice(tile.core_top * scale, tile.core_bottom * scale),
            slice(tile.core_left * scale, tile.core_right * scale),
        )
        return core, place

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The decoder's image of ``latents``, without gradient."""
        with torch.no_grad():
            if self.single_tile(latents):
                return self.encoder.decode(latents)
            features = self.head(latents)
            output: torch.Tensor | None = None
            for tile in self._tiles(latents):
                core, (rows, cols) = self._tile_core(features, tile)
                if output is None:
                    scale = core.shape[-1] // (tile.core_right - tile.core_left)
                    shape = (core.shape[0], core.shape[1], latents.shape[-2] * scale, latents.shape[-1] * scale)
                    output = core.new_empty(shape)
                output[..., rows, cols] = core
            assert output is not None
            return output

    def squared_distance(self, latents: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """``||D(latents) - reference||^2`` (``reference`` the decoder's size), as a tensor whose gradient
        reaches ``latents`` when they require it. A large map is decoded and back-propagated one tile at a
        time (the tiles' gradients gathered on the head's output), so memory holds one tile's graph, not the
        whole image's; the value and gradient are those of a whole decode."""
        if self.single_tile(latents):
            return (self.encoder.decode(latents) - reference).pow(2).sum()
        track = torch.is_grad_enabled() and latents.requires_grad
        features = self.head(latents)
        leaf = features.detach().requires_grad_(track)
        total = 0.0
        for tile in self._tiles(latents):
            with torch.set_grad_enabled(track):
                core, (rows, cols) = self._tile_core(leaf, tile)
                loss = (core - reference[..., rows, cols]).pow(2).sum()
            if track:
                loss.backward()
            total += float(loss.detach())
        if not track or leaf.grad is None:
            return features.new_tensor(total)
        # A stand-in with the whole distance's value and, through the head, its gradient.
        linear = (features * leaf.grad).sum()
        return linear - linear.detach() + total
