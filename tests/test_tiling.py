from __future__ import annotations

import numpy as np
import pytest

from stylecloak.tiling import plan_tiles


@pytest.mark.parametrize("height,width,tile", [(2000, 3000, 512), (344, 512, 512), (37, 53, 64), (1030, 777, 256)])
def test_cores_cover_every_pixel_exactly_once(height: int, width: int, tile: int) -> None:
    cover = np.zeros((height, width), dtype=np.int32)
    for t in plan_tiles(height, width, tile, context=32):
        cover[t.core] += 1
        assert t.crop_top <= t.core_top and t.core_bottom <= t.crop_bottom
        assert t.crop_bottom - t.crop_top <= tile + 64 and t.crop_right - t.crop_left <= tile + 64
        assert t.crop_top % 8 == 0 and t.crop_left % 8 == 0  # crops start on the latent grid
    assert (cover == 1).all()


def test_a_small_image_is_one_tile_without_context() -> None:
    (tile,) = plan_tiles(344, 512, 512, context=32)
    assert (tile.crop_top, tile.crop_left, tile.crop_bottom, tile.crop_right) == (0, 0, 344, 512)
