"""Countermeasures a mimic may apply to scraped art before training (DESIGN.md section 5, robustness).

Each takes and returns a 1x3xHxW image in [0, 1], and returns 8-bit values, as a file on disk would hold.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from .imaging import image_to_tensor, quantize_rgb, tensor_to_image


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Re-encode as JPEG at ``quality`` with Pillow's defaults (4:2:0 chroma subsampling, as most sites do)."""
    buffer = io.BytesIO()
    Image.fromarray(quantize_rgb(tensor_to_image(image))).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        rgb = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255.0
    return image_to_tensor(rgb).to(image.device)
