"""Safe reading and writing of artwork images.

Reading turns whatever an artist hands us (PNG, JPEG, CMYK, 16-bit, palette, rotated phone photos, ...) into one
canonical form: upright float32 RGB in [0, 1] plus an optional separate alpha. Bad input (empty, corrupt, truncated,
animated, absurdly large) becomes an ``ImageInputError`` with a one-line message, never a traceback from deep
inside Pillow.

Writing is atomic: the encoded file goes to a hidden ``.part`` file in the target folder and is moved into place
with ``os.replace``, so an interrupted run never leaves a half-written image where the artist expects the cloaked
one (or destroys an earlier good one).

Nothing here touches Pillow's process-wide settings (``Image.MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``): this
module is used from a web app too, and those globals would leak into every other caller.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

DEFAULT_MAX_PIXELS = 64_000_000  # e.g. 8000x8000

# Formats we are willing to decode. Restricting this keeps e.g. EPS (which shells out to Ghostscript) and other
# exotic decoders away from untrusted uploads. PSD is left out because Pillow exposes its layers as frames.
READ_FORMATS = ("PNG", "JPEG", "WEBP", "AVIF", "TIFF", "GIF", "BMP", "PPM", "TGA", "JPEG2000", "QOI")

# The file names an image folder is listed by (reading is still checked by content, READ_FORMATS).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".avif", ".jp2", ".qoi", ".tga", ".ppm"}
)
# What marks our own outputs: ``wave.png`` is cloaked into ``wave.cloaked.png``. A file whose name holds
# ``.cloaked.`` is never taken as an input, so a folder cloaked in place is not cloaked twice.
OUTPUT_MARK = ".cloaked"


def is_cloaked_name(name: str) -> bool:
    return OUTPUT_MARK + "." in name


def list_images(folder: str | os.PathLike, include_cloaked: bool = True) -> list[Path]:
    """The image files directly in ``folder`` (by suffix, sorted; not recursive)."""
    return sorted(
        child
        for child in Path(folder).iterdir()
        if child.is_file()
        and child.suffix.lower() in IMAGE_SUFFIXES
        and (include_cloaked or not is_cloaked_name(child.name))
    )


def expand_inputs(paths: Sequence[str | os.PathLike]) -> Iterator[Path]:
    """What a user names on a command line: files as given (a missing or bad one is reported by the loader, in
    the batch), folders expanded to their images (not recursive), skipping our own ``.cloaked`` outputs."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from list_images(path, include_cloaked=False)
        else:
            yield path


# Output extension -> Pillow format name.
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

_ORIENTATION_TAG = 0x0112

# Everything Pillow's decoders are known to raise on broken data. A malformed file must never escape as a
# traceback, so this is deliberately broad (but not bare ``Exception``, which would hide our own bugs).
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    zlib.error,
)

_MODES_WITH_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
_HIGH_BIT_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageInputError(ValueError):
    """An input image we cannot or will not use. The message is one short line without the path."""


@dataclass
class LoadedImage:
    rgb: np.ndarray  # float32 HxWx3 in [0, 1], upright (EXIF orientation applied), colour data as stored
    alpha: np.ndarray | None  # float32 HxW in [0, 1]; kept whenever the source had alpha, even if fully opaque
    icc_profile: bytes | None  # an RGB profile that still describes ``rgb``; None means assume sRGB
    source_format: str  # "PNG", "JPEG", "MPO", ...
    source_mode: str  # Pillow mode before conversion, e.g. "CMYK", "I;16", "P", "LA"
    bit_depth: int  # 8 or 16 (informational; 16 means "more than 8 bits per channel in the file")
    exif: bytes | None  # EXIF ("Exif\0\0..." bytes) with Orientation reset to 1, or None

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


# --------------------------------------------------------------------------------------------------- reading


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read and fully decode an image file. Raises ``ImageInputError`` for anything unusable."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageInputError("file not found") from None
    except PermissionError:
        raise ImageInputError("permission denied") from None
    except OSError as exc:
        raise ImageInputError(f"cannot access file ({_one_line(exc.strerror or str(exc))})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageInputError("is a directory, not an image file")
    # Opening a FIFO or device would block or read forever.
    if not stat.S_ISREG(st.st_mode):
        raise ImageInputError("not a regular file")
    if st.st_size == 0:
        raise ImageInputError("file is empty (0 bytes)")
    try:
        with open(path, "rb") as f:
            return _load_stream(f, max_pixels)
    except PermissionError:
        raise ImageInputError("permission denied") from None


def load_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Like ``load_image`` but from an in-memory file (e.g. a web upload)."""
    if len(data) == 0:
        raise ImageInputError("file is empty (0 bytes)")
    return _load_stream(io.BytesIO(data), max_pixels)


def _load_stream(fp: IO[bytes], max_pixels: int) -> LoadedImage:
    im = _open_checked(fp, max_pixels)
    with im:
        source_format = im.format or "unknown"
        source_mode = im.mode
        bit_depth = 16 if _is_high_bit(im) else 8
        try:
            im.load()
        except Image.DecompressionBombError:
            raise ImageInputError(f"image is too large (limit {max_pixels:,} pixels)") from None
        except _DECODE_ERRORS as exc:
            raise ImageInputError(f"corrupt or truncated image ({_one_line(str(exc))})") from None
        icc = im.info.get("icc_profile") or None
        upright = _upright(im)
        # Only after transposing: this rewrites the Orientation tag that exif_transpose reads.
        exif = _exif_with_upright_orientation(im)
    with upright:
        try:
            rgb, alpha, icc = _to_float_rgb(upright, icc)
        except _DECODE_ERRORS as exc:
            raise ImageInputError(f"unsupported image mode {source_mode} ({_one_line(str(exc))})") from None
    return LoadedImage(
        rgb=rgb,
        alpha=alpha,
        icc_profile=icc,
        source_format=source_format,
        source_mode=source_mode,
        bit_depth=bit_depth,
        exif=exif,
    )


def _open_checked(fp: IO[bytes], max_pixels: int) -> Image.Image:
    """Identify the file and check size / frame count from the header, before any pixel is decoded."""
    # Image.open with an explicit format list skips Pillow's own lazy plugin loading, so load the plugins first
    # and only ask for formats this Pillow build actually has (an unknown name would raise KeyError).
    Image.init()
    formats = [f for f in READ_FORMATS if f in Image.OPEN]
    try:
        im = Image.open(fp, formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own check fired (header far beyond its limit, or warnings are errors): report our limit.
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1)):,} pixels" if pixels else "header claims a huge size"
        raise ImageInputError(f"image is too large: {size}, limit is {max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        # Pillow's message names the file; ours must not. Pillow also says "cannot identify" when a known
        # format's header is cut short, so tell that case apart by the magic bytes.
        if _has_known_signature(fp, formats):
            raise ImageInputError("corrupt or truncated image (unreadable header)") from None
        raise ImageInputError("not an image file, or not a supported format (use PNG, JPEG, WebP or TIFF)") from None
    except _DECODE_ERRORS as exc:
        raise ImageInputError(f"corrupt or truncated image ({_one_line(str(exc))})") from None

    try:
        width, height = im.size
        if width <= 0 or height <= 0:
            raise ImageInputError(f"image has an empty size ({width}x{height})")
        if width * height > max_pixels:
            raise ImageInputError(
                f"image is too large: {width}x{height} = {width * height:,} pixels, limit is {max_pixels:,} pixels"
            )
        # MPO is a JPEG carrying extra pictures (stereo, depth maps from phones); its first frame is the photo.
        if im.format != "MPO" and _is_multi_frame(im):
            raise ImageInputError(
                "animated or multi-frame images are not supported; only still images are - export a single frame"
            )
    except BaseException:
        im.close()
        raise
    return im


def _has_known_signature(fp: IO[bytes], formats: list[str]) -> bool:
    try:
        fp.seek(0)
        prefix = fp.read(16)
    except (OSError, ValueError):
        return False
    for name in formats:
        accept = Image.OPEN[name][1]
        try:
            # accept() returns True, False, or a warning string for "recognised but unsupported".
            result = accept(prefix) if accept is not None else False
        except _DECODE_ERRORS:
            continue
        if result and not isinstance(result, str):
            return True
    return False


def _is_multi_frame(im: Image.Image) -> bool:
    try:
        # is_animated is cheap (GIF's n_frames would scan the whole file); fall back to n_frames without it.
        animated = getattr(im, "is_animated", None)
        return bool(animated) if animated is not None else int(getattr(im, "n_frames", 1)) > 1
    except _DECODE_ERRORS as exc:
        # Counting frames reads the file; a broken frame table is a broken file.
        raise ImageInputError(f"corrupt or truncated image ({_one_line(str(exc))})") from None


def _is_high_bit(im: Image.Image) -> bool:
    """Whether the file stores more than 8 bits per channel (Pillow decodes 16-bit RGB PNG to 8-bit RGB)."""
    if im.mode in _HIGH_BIT_GREY_MODES or im.mode == "F":
        return True
    # The raw mode in the decoder tile says what the file holds, e.g. "RGB;16B" for a 16-bit RGB PNG.
    return any(";16" in str(tile.args) for tile in getattr(im, "tile", []) or [])


def _exif_with_upright_orientation(im: Image.Image) -> bytes | None:
    """The image's EXIF with Orientation set to 1, since the pixels we return are already rotated."""
    try:
        exif = im.getexif()
        if len(exif) == 0:
            return None
        if _ORIENTATION_TAG in exif:
            exif[_ORIENTATION_TAG] = 1
        return exif.tobytes()
    except _DECODE_ERRORS:
        # EXIF is informational; a malformed block must not make the artwork unreadable.
        return None


def _upright(im: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except _DECODE_ERRORS:
        # Unparseable EXIF: we cannot know the intended orientation, so keep the pixels as stored.
        return im.copy()


def _to_float_rgb(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """Decoded image -> (float32 HxWx3 RGB, float32 HxW alpha or None, ICC profile still valid for the RGB)."""
    mode = im.mode
    if mode in _HIGH_BIT_GREY_MODES:
        grey = np.asarray(im).astype(np.float32)
        # 16-bit data: full scale is 65535 (converting via mode "L" would clip everything above 255).
        grey /= 65535.0
        np.clip(grey, 0.0, 1.0, out=grey)
        alpha = _colour_key_alpha(im, grey_raw=np.asarray(im))
        return _grey_to_rgb(grey), alpha, _rgb_icc_only(icc)
    if mode == "F":
        grey = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        # Float images come either normalised to [0, 1] or on the 8-bit scale.
        if grey.size and float(grey.max()) > 1.0:
            grey /= 255.0
        np.clip(grey, 0.0, 1.0, out=grey)
        return _grey_to_rgb(grey), None, _rgb_icc_only(icc)
    if mode == "CMYK":
        # CMYK pixels must be separated into sRGB; the CMYK profile then no longer describes them.
        return _uint8_to_float(np.asarray(_cmyk_to_srgb(im, icc))), None, None

    alpha = None
    if mode in _MODES_WITH_ALPHA or "transparency" in im.info:
        # convert("RGBA") expands palettes, applies tRNS colour keys and un-premultiplies RGBa/La.
        rgba = im.convert("RGBA")
        alpha = _uint8_to_float(np.asarray(rgba.getchannel("A")))
        colour = rgba.convert("RGB")
    elif mode == "RGB":
        colour = im
    else:  # L, 1, P, YCbCr, HSV, LAB, RGBX, ...
        colour = im.convert("RGB")
    return _uint8_to_float(np.asarray(colour)), alpha, _rgb_icc_only(icc)


def _colour_key_alpha(im: Image.Image, grey_raw: np.ndarray) -> np.ndarray | None:
    """Alpha for a 16-bit grey image with a tRNS colour key (one grey value marked fully transparent)."""
    key = im.info.get("transparency")
    if not isinstance(key, int):
        return None
    return (grey_raw != key).astype(np.float32)


def _cmyk_to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if icc:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # noqa: BLE001 - any CMS failure (no lcms, bad or mismatched profile) -> naive convert
            pass
    return im.convert("RGB")


def _rgb_icc_only(icc: bytes | None) -> bytes | None:
    """Keep a profile only if it describes RGB data: a grey profile on an RGB output file is invalid."""
    # Bytes 16..19 of an ICC header are the data colour space signature.
    if icc and len(icc) >= 20 and icc[16:20] == b"RGB ":
        return icc
    return None


def _uint8_to_float(a: np.ndarray) -> np.ndarray:
    out = a.astype(np.float32)
    # Exact division (not multiplication by 1/255) so quantize_rgb gives back the very same uint8 values.
    out /= 255.0
    return out


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def _one_line(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------------- writing


def quantize_8bit(image: torch.Tensor) -> torch.Tensor:
    """Round a [0, 1] float image to 8-bit levels (clamped): the values a PNG of ``image`` holds, as floats."""
    return torch.round(image.clamp(0, 1) * 255) / 255


def quantize_rgb(rgb: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8 by rounding to the nearest level (np.round; out-of-range values are clipped)."""
    rgb = np.asarray(rgb)
    # uint8 input times 255 would silently wrap around; that is always a caller bug.
    if not np.issubdtype(rgb.dtype, np.floating):
        raise TypeError(f"quantize_rgb expects floats in [0, 1], got {rgb.dtype}")
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def save_image(
    path: str | os.PathLike,
    rgb_uint8: np.ndarray,
    alpha: np.ndarray | None = None,
    icc_profile: bytes | None = None,
    metadata: dict[str, str] | None = None,
    exif: bytes | None = None,
    quality: int = 95,
) -> Path:
    """Atomically write an image; the format comes from the extension (.png, .jpg/.jpeg, .webp).

    ``metadata`` becomes PNG tEXt/iTXt chunks, or a comment in JPEG; WebP has no plain text slot, so it is
    not written there. ``quality`` applies to JPEG and (lossy) WebP.
    """
    path = Path(path)
    # Encode fully in memory first: an encoder failure then cannot leave anything on disk.
    data = encode_image(rgb_uint8, output_format(path), alpha, icc_profile, metadata, exif, quality)
    atomic_write_bytes(path, data)
    return path


def output_format(path: str | os.PathLike) -> str:
    """The Pillow format that :func:`save_image` writes for ``path``'s extension."""
    suffix = Path(path).suffix.lower()
    fmt = WRITE_FORMATS.get(suffix)
    if fmt is None:
        raise ImageInputError(f"unsupported output format {suffix or '(none)'!r}; use .png, .jpg or .webp")
    return fmt


def encode_image(
    rgb_uint8: np.ndarray,
    fmt: str,
    alpha: np.ndarray | None = None,
    icc_profile: bytes | None = None,
    metadata: dict[str, str] | None = None,
    exif: bytes | None = None,
    quality: int = 95,
) -> bytes:
    """The bytes of an image file in ``fmt`` ("PNG", "JPEG" or "WEBP"), as :func:`save_image` writes them."""
    if fmt == "JPEG" and alpha is not None:
        raise ImageInputError("JPEG cannot hold transparency; save as PNG or WebP instead")
    image = _pil_image(rgb_uint8, alpha)
    options: dict[str, object] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if exif:
        options["exif"] = exif
    if fmt == "PNG":
        if metadata:
            options["pnginfo"] = _png_info(metadata)
    elif fmt == "JPEG":
        # The cloak lives in fine detail; 4:2:0 chroma subsampling would blur half of it away.
        options.update(quality=quality, subsampling=0)
        if metadata:
            options["comment"] = "\n".join(f"{k}: {v}" for k, v in metadata.items()).encode("utf-8")
    else:  # WEBP
        options.update(quality=quality, lossless=False)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _pil_image(rgb_uint8: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    rgb = np.asarray(rgb_uint8)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb_uint8 must be a uint8 HxWx3 array, got {rgb.dtype} {rgb.shape}")
    if alpha is None:
        return Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    a = np.asarray(alpha)
    if a.shape != rgb.shape[:2]:
        raise ValueError(f"alpha must be HxW {rgb.shape[:2]}, got {a.shape}")
    a8 = a if a.dtype == np.uint8 else quantize_rgb(a)
    return Image.fromarray(np.ascontiguousarray(np.dstack([rgb, a8])), mode="RGBA")


def _png_info(metadata: dict[str, str]) -> PngInfo:
    info = PngInfo()
    for key, value in metadata.items():
        # PNG keywords are 1-79 Latin-1 characters; anything else makes an invalid file.
        try:
            key.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"PNG metadata key must be Latin-1: {key!r}") from None
        if not 1 <= len(key) <= 79:
            raise ValueError(f"PNG metadata key must be 1-79 characters: {key!r}")
        # add_text falls back to an (UTF-8) iTXt chunk when the value is not Latin-1.
        info.add_text(key, str(value))
    return info


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target, so os.replace is a rename within one file system (atomic).
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False)
    try:
        with tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        # NamedTemporaryFile creates files 0600; give the result the permissions a plain open() would.
        os.chmod(tmp.name, _new_file_mode(path))
        os.replace(tmp.name, path)
    except BaseException:
        try:
            os.unlink(tmp.name)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _new_file_mode(path: Path) -> int:
    """Mode for the written file: keep an existing file's mode, otherwise 0666 minus the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_current_umask()


def _current_umask() -> int:
    # os.umask can only be read by setting it, which races with other threads; Linux exposes it read-only.
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); best effort, not possible on every platform."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def output_path_for(
    input_path: str | os.PathLike, out_dir: str | os.PathLike, suffix: str = OUTPUT_MARK, fmt: str = "png"
) -> Path:
    """``OUT_DIR/<stem><suffix>.<fmt>``; raises ``ImageInputError`` rather than ever returning the input itself."""
    ext = "." + fmt.lower().lstrip(".")
    if ext not in WRITE_FORMATS:
        raise ImageInputError(f"unsupported output format {fmt!r}; use png, jpg or webp")
    # A separator in the suffix would write outside out_dir.
    if "/" in suffix or "\\" in suffix or os.sep in suffix:
        raise ValueError(f"suffix must not contain path separators: {suffix!r}")
    input_path = Path(input_path)
    out = Path(out_dir) / f"{input_path.stem}{suffix}{ext}"
    same = out.resolve() == input_path.resolve()
    # samefile also catches case-insensitive file systems and hard links.
    if not same and out.exists() and input_path.exists():
        same = os.path.samefile(out, input_path)
    if same:
        raise ImageInputError("output path would overwrite the input image; use another output folder or suffix")
    return out


# --------------------------------------------------------------------------------------------------- tensors


def image_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 float array -> 1x3xHxW float32 tensor (a contiguous copy; never shares memory with ``rgb``)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 array, got shape {rgb.shape}")
    chw = np.array(rgb.transpose(2, 0, 1)[None], dtype=np.float32, order="C", copy=True)
    return torch.from_numpy(chw)


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """1x3xHxW (or 3xHxW) tensor -> HxWx3 float32 array (a copy; no clipping or quantization)."""
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got shape {tuple(t.shape)}")
        t = t[0]
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a 1x3xHxW or 3xHxW tensor, got shape {tuple(t.shape)}")
    hwc = t.detach().to(device="cpu", dtype=torch.float32).permute(1, 2, 0)
    return np.array(hwc.numpy(), dtype=np.float32, order="C", copy=True)
