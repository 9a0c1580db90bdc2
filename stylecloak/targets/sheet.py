"""A contact sheet: the original and each target rendition side by side, labelled, in one image."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..descriptors import resize_long_side
from ..imaging import quantize_rgb, tensor_to_image
from .base import TargetStyle

LABEL_HEIGHT = 22
GAP = 6


def contact_sheet(
    image: torch.Tensor, targets: Sequence[TargetStyle], cell: int = 320, columns: int = 4, seed: int = 0
) -> np.ndarray:
    """An RGB uint8 sheet: ``image`` (1x3xHxW in [0, 1]) then its rendition in each target, each ``cell`` px
    on its long side, with its name below it. Renditions are made at the cell size, as a user would preview them."""
    small = resize_long_side(image, cell).clamp(0, 1)
    panels = [("original", small)] + [(t.name, t.render(small, seed=seed).clamp(0, 1)) for t in targets]
    height, width = small.shape[-2:]
    rows = -(-len(panels) // columns)
    sheet = Image.new("RGB", (columns * (width + GAP) + GAP, rows * (height + LABEL_HEIGHT + GAP) + GAP), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for index, (name, panel) in enumerate(panels):
        left = GAP + (index % columns) * (width + GAP)
        top = GAP + (index // columns) * (height + LABEL_HEIGHT + GAP)
        sheet.paste(Image.fromarray(quantize_rgb(tensor_to_image(panel))), (left, top))
        draw.text((left + 4, top + height + 4), name, fill="black", font=font)
    return np.asarray(sheet)


def write_preview(
    image_path: str | os.PathLike[str], output: str | os.PathLike[str], target: str | None, seed: int = 0
) -> Path:
    """`targets render`: the image at ``image_path`` rendered in ``target``, or with ``target`` None a contact
    sheet of every target style, written (atomically) to ``output``. Raises KeyError for an unknown target,
    ImageInputError or OSError for an image that cannot be read or written."""
    from ..imaging import image_to_tensor, load_image, save_image
    from .base import available_targets, get_target

    source = image_to_tensor(load_image(image_path).rgb)
    if target is None:
        return Path(save_image(output, contact_sheet(source, available_targets(), seed=seed)))
    rendered = get_target(target).render(source, seed=seed)
    return Path(save_image(output, quantize_rgb(tensor_to_image(rendered))))
