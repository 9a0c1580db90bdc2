"""Checking uploads: what a file really is (from its bytes), how big it is, and names that are safe to show.

A name the user gave is only ever displayed or used inside a ZIP, after :func:`safe_file_name`; files on disk are
named by the job's item index.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..imaging import ImageInputError, load_image_bytes

# Pillow format -> extension of the stored copy (the bytes are kept as uploaded).
_EXTENSIONS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "BMP": ".bmp",
    "GIF": ".gif",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class CheckedUpload:
    name: str  # for display
    extension: str  # of the stored copy, from the decoded format
    width: int
    height: int


class UploadRejected(ValueError):
    """An upload that is not used, with a one-line reason meant for the artist."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def check_upload(name: str | None, data: bytes, max_bytes: int, max_pixels: int) -> CheckedUpload:
    """Decode the upload fully (the only reliable check of what it is) and return what we keep of it."""
    display = display_name(name)
    if len(data) > max_bytes:
        raise UploadRejected(display, f"file is too large ({len(data) / 1e6:.1f} MB, limit {max_bytes / 1e6:.0f} MB)")
    try:
        image = load_image_bytes(data, max_pixels=max_pixels)
    except ImageInputError as exc:
        raise UploadRejected(display, str(exc)) from None
    return CheckedUpload(
        name=display, extension=_EXTENSIONS.get(image.source_format, ".img"), width=image.width, height=image.height
    )


def display_name(name: str | None, fallback: str = "image") -> str:
    """The last path component of a client's file name, without control characters, at most 120 characters."""
    if not name:
        return fallback
    last = re.split(r"[\\/]", name)[-1]
    cleaned = "".join(ch for ch in unicodedata.normalize("NFC", last) if unicodedata.category(ch)[0] != "C").strip()
    cleaned = cleaned.lstrip(".") or fallback
    return cleaned[:120]


def safe_file_name(name: str, fallback: str = "image") -> str:
    """A file name for a ZIP entry or a download header: ASCII letters, digits, ``._ -``, no leading dot."""
    ascii_name = unicodedata.normalize("NFKD", display_name(name, fallback)).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_name).strip(" ._")
    return cleaned[:100] or fallback


def unique_names(names: list[str]) -> list[str]:
    """``names`` with ``-2``, ``-3``... added before the extension where a name repeats (case-insensitively)."""
    used: set[str] = set()
    result = []
    for name in names:
        stem, dot, ext = name.rpartition(".")
        if not stem:
            stem, dot, ext = name, "", ""
        candidate, count = name, 1
        while candidate.lower() in used:
            count += 1
            candidate = f"{stem}-{count}{dot}{ext}"
        used.add(candidate.lower())
        result.append(candidate)
    return result
