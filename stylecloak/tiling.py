"""Split a large image into tiles for a bounded-memory, full-resolution pass.

The cloak is one full-resolution perturbation; tiles only bound the memory of each forward/backward pass.
Each tile has a *core* (the cells of the image it is responsible for) and a *crop* (the core plus surrounding
context), so that the encoder sees what it would see in a whole-image pass. Cores partition the image, so
every latent cell and every pixel's gradient comes from exactly one tile: there is no blending and no seam.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    """One tile, in pixels. ``core_*`` lie inside ``crop_*``; all are multiples of ``grid`` except at the image edge."""

    crop_top: int
    crop_left: int
    crop_bottom: int
    crop_right: int
    core_top: int
    core_left: int
    core_bottom: int
    core_right: int

    @property
    def crop(self) -> tuple[slice, slice]:
        return slice(self.crop_top, self.crop_bottom), slice(self.crop_left, self.crop_right)

    @property
    def core(self) -> tuple[slice, slice]:
        return slice(self.core_top, self.core_bottom), slice(self.core_left, self.core_right)

    @property
    def core_in_crop(self) -> tuple[slice, slice]:
        """Where the core sits inside the crop (pixel coordinates relative to the crop)."""
        return (
            slice(self.core_top - self.crop_top, self.core_bottom - self.crop_top),
            slice(self.core_left - self.crop_left, self.core_right - self.crop_left),
        )

    def core_in_crop_latent(self, downscale: int) -> tuple[slice, slice]:
        """The core's latent cells inside the crop's latents (the crop's origin is on the latent grid)."""
        rows, cols = self.core_in_crop
        return (
            slice(rows.start // downscale, -(-rows.stop // downscale)),
            slice(cols.start // downscale, -(-cols.stop // downscale)),
        )

    def core_latent(self, downscale: int) -> tuple[slice, slice]:
        """The core's latent cells in the whole image's latents."""
        return (
            slice(self.core_top // downscale, -(-self.core_bottom // downscale)),
            slice(self.core_left // downscale, -(-self.core_right // downscale)),
        )

    @property
    def core_area(self) -> int:
        return (self.core_bottom - self.core_top) * (self.core_right - self.core_left)


def _spans(length: int, core: int, grid: int) -> list[tuple[int, int]]:
    """Split [0, length) into near-equal spans of at most ``core`` pixels whose inner edges lie on ``grid``."""
    count = max(1, -(-length // core))
    cells = -(-length // grid)
    edges = [min(length, round(cells * i / count) * grid) for i in range(count + 1)]
    edges[-1] = length
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def plan_tiles(height: int, width: int, tile_size: int = 512, context: int = 32, grid: int = 8) -> list[Tile]:
    """Tiles whose cores cover the image exactly once, each crop at most ``tile_size + 2 * context`` a side.

    An image that fits in one tile gets a single tile without context (a plain whole-image pass).
    """
    if tile_size % grid or context % grid:
        raise ValueError(f"tile_size and context must be multiples of {grid}")
    tiles = []
    for top, bottom in _spans(height, tile_size, grid):
        for left, right in _spans(width, tile_size, grid):
            tiles.append(
                Tile(
                    crop_top=max(0, top - context),
                    crop_left=max(0, left - context),
                    crop_bottom=min(height, bottom + context),
                    crop_right=min(width, right + context),
                    core_top=top,
                    core_left=left,
                    core_bottom=bottom,
                    core_right=right,
                )
            )
    return tiles
