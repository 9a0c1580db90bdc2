"""Labelled image folders, for training and scoring style classifiers.

Two layouts are read:

- a folder with a ``manifest.csv`` (columns ``file`` and a label column, ``style`` by default; other columns such
  as ``artist`` and ``title`` are ignored unless named), as in the shared paintings;
- a folder per label: ``DIR/LABEL/*.png``, the usual layout for generated or scraped images.

Errors are ``LabelledFolderError`` with a one-line message that names the folder and what is wrong.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..imaging import list_images

MANIFEST_NAME = "manifest.csv"
_MAX_LISTED = 5  # missing files named in one error line; the rest are counted


class LabelledFolderError(ValueError):
    """A labelled folder we cannot use. The message is one line."""


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: str


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def read_manifest(folder: str | os.PathLike[str], column: str = "style") -> list[LabelledImage]:
    """The images of ``folder/manifest.csv`` with their label from ``column``, in the manifest's order."""
    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise LabelledFolderError(f"{folder}: not a folder")
    if not manifest.is_file():
        raise LabelledFolderError(f"{folder}: has no {MANIFEST_NAME}")
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [name.strip() for name in reader.fieldnames or []]
            rows = [
                {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)} for row in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelledFolderError(f"{manifest}: not a readable CSV file ({exc})") from None
    missing_columns = [name for name in ("file", column) if name not in fields]
    if missing_columns:
        have = ", ".join(fields) if fields else "none"
        raise LabelledFolderError(f"{manifest}: no column {' or '.join(missing_columns)} (columns: {have})")
    items: list[LabelledImage] = []
    unlabelled, missing, seen = [], [], set()
    for line, row in enumerate(rows, start=2):
        name, label = row.get("file", ""), row.get(column, "")
        if not name:
            continue  # blank lines and trailing commas
        if not label:
            unlabelled.append(f"{name} (line {line})")
            continue
        path = folder / name
        if name in seen:
            raise LabelledFolderError(f"{manifest}: {name} is listed twice")
        seen.add(name)
        if not path.is_file():
            missing.append(name)
            continue
        items.append(LabelledImage(path, label))
    if missing:
        raise LabelledFolderError(f"{manifest}: {len(missing)} listed file(s) not found: {_listing(missing)}")
    if unlabelled:
        raise LabelledFolderError(
            f"{manifest}: {len(unlabelled)} file(s) with an empty {column!r}: {_listing(unlabelled)}"
        )
    if not items:
        raise LabelledFolderError(f"{manifest}: lists no images")
    return items


def read_label_folders(folder: str | os.PathLike[str]) -> list[LabelledImage]:
    """The images of ``folder/LABEL/*``, labelled by their sub-folder's name, sorted by label then file name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LabelledFolderError(f"{folder}: not a folder")
    items = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        items.extend(LabelledImage(child, sub.name) for child in list_images(sub))
    if not items:
        raise LabelledFolderError(
            f"{folder}: no {MANIFEST_NAME} and no label sub-folders with images (DIR/LABEL/*.png)"
        )
    return items


def read_labelled_folder(folder: str | os.PathLike[str], column: str = "style") -> list[LabelledImage]:
    """``manifest.csv`` when the folder has one, else the folder-per-label layout."""
    if (Path(folder) / MANIFEST_NAME).exists():
        return read_manifest(folder, column)
    return read_label_folders(folder)


def load_labelled_images(
    items: Sequence[LabelledImage], long_side: int | None = None
) -> tuple[list[torch.Tensor], list[str]]:
    """The images as 1x3xHxW tensors in [0, 1] (shrunk to ``long_side`` when larger) and their labels.
    An unreadable image is an error naming the file: a labelled set with holes would skew the scores."""
    from ..descriptors import resize_long_side
    from ..imaging import ImageInputError, image_to_tensor, load_image

    images, labels = [], []
    for item in items:
        try:
            image = image_to_tensor(load_image(item.path).rgb)
        except (ImageInputError, OSError) as exc:
            raise LabelledFolderError(f"{item.path}: {exc}") from None
        if long_side is not None and max(image.shape[-2:]) > long_side:
            image = resize_long_side(image, long_side)
        images.append(image)
        labels.append(item.label)
    return images, labels
