"""Reading and writing artwork images: bad inputs, odd modes, orientation, metadata and atomic writes."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from stylecloak import imaging
from stylecloak.imaging import (
    DEFAULT_MAX_PIXELS,
    ImageInputError,
    LoadedImage,
    atomic_write_bytes,
    image_to_tensor,
    load_image,
    load_image_bytes,
    output_path_for,
    quantize_rgb,
    save_image,
    tensor_to_image,
)

GREAT_WAVE = Path("/work/shared/data/paintings/hokusai_great_wave.png")


def _noise(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, channels), dtype=np.uint8)


def _png_bytes(im: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kwargs)
    return buf.getvalue()


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _patch_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR width/height (and its CRC) of a valid PNG: a decompression-bomb-like header."""
    assert png[12:16] == b"IHDR"
    ihdr = bytearray(png[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return png[:16] + bytes(ihdr) + crc + png[33:]


def _no_part_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".part")]


# ------------------------------------------------------------------------------------------------ bad inputs


def test_missing_file(tmp_path):
    with pytest.raises(ImageInputError, match="not found"):
        load_image(tmp_path / "nope.png")


def test_directory(tmp_path):
    with pytest.raises(ImageInputError, match="directory"):
        load_image(tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageInputError, match="empty"):
        load_image(p)
    with pytest.raises(ImageInputError, match="empty"):
        load_image_bytes(b"")


def test_text_file_named_png(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not an image\n")
    with pytest.raises(ImageInputError, match="not an image") as info:
        load_image(p)
    msg = str(info.value)
    assert "\n" not in msg and str(p) not in msg  # one line; the caller adds the path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path, fmt):
    buf = io.BytesIO()
    Image.fromarray(_noise(128, 128)).save(buf, format=fmt)
    data = buf.getvalue()
    p = tmp_path / f"cut.{fmt.lower()}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match="corrupt or truncated") as info:
        load_image(p)
    assert "\n" not in str(info.value)


def test_png_cut_inside_header():
    png = _png_bytes(Image.new("L", (8, 8)))
    with pytest.raises(ImageInputError, match="corrupt or truncated"):
        load_image_bytes(png[:20])  # inside IHDR
    with pytest.raises(ImageInputError, match="corrupt or truncated"):
        load_image_bytes(png[:10])  # inside the signature block


def test_animated_gif(tmp_path):
    frames = [Image.fromarray(_noise(16, 16, seed=i)).convert("P") for i in range(3)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(ImageInputError, match="still images") as info:
        load_image(p)
    assert "single frame" in str(info.value)


def test_animated_png(tmp_path):
    frames = [Image.fromarray(_noise(16, 16, seed=i)) for i in range(2)]
    p = tmp_path / "anim.png"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageInputError, match="still images"):
        load_image(p)


def test_single_frame_gif_loads(tmp_path):
    p = tmp_path / "still.gif"
    Image.new("P", (8, 6), 3).save(p)
    img = load_image(p)
    assert img.rgb.shape == (6, 8, 3) and img.source_format == "GIF"


def test_too_many_pixels_via_max_pixels(tmp_path):
    p = tmp_path / "big.png"
    Image.new("RGB", (100, 50)).save(p)
    with pytest.raises(ImageInputError, match="too large") as info:
        load_image(p, max_pixels=4999)
    assert "100x50" in str(info.value) and "4,999" in str(info.value)
    assert load_image(p, max_pixels=5000).rgb.shape == (50, 100, 3)


def test_decompression_bomb_header_is_rejected_without_decoding():
    png = _patch_ihdr_size(_png_bytes(Image.new("L", (8, 8))), 100_000, 100_000)
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageInputError, match="too large") as info:
        load_image_bytes(png)
    assert f"{DEFAULT_MAX_PIXELS:,}" in str(info.value)
    assert Image.MAX_IMAGE_PIXELS == before  # no global state touched


def test_header_over_our_limit_but_under_pillows(tmp_path):
    # 9000x9000 = 81M pixels: below Pillow's warning threshold, above our 64M default.
    png = _patch_ihdr_size(_png_bytes(Image.new("L", (8, 8))), 9000, 9000)
    with pytest.raises(ImageInputError, match="9000x9000"):
        load_image_bytes(png)


def test_bomb_warning_as_error_is_caught(recwarn):
    # Under `-W error` Pillow raises its DecompressionBombWarning from Image.open; that must still be our error.
    import warnings

    png = _patch_ihdr_size(_png_bytes(Image.new("L", (8, 8))), 10_000, 10_000)  # 100M: warning zone
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageInputError, match="too large"):
            load_image_bytes(png, max_pixels=200_000_000)


# ------------------------------------------------------------------------------------------------ modes


def test_rgb_png_exact_values():
    px = _noise(5, 7)
    img = load_image_bytes(_png_bytes(Image.fromarray(px)))
    assert isinstance(img, LoadedImage)
    assert img.rgb.dtype == np.float32 and img.rgb.shape == (5, 7, 3)
    assert (img.width, img.height) == (7, 5)
    assert img.alpha is None and img.source_mode == "RGB" and img.source_format == "PNG" and img.bit_depth == 8
    np.testing.assert_array_equal(quantize_rgb(img.rgb), px)


def test_cmyk_jpeg(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(p, quality=95)  # pure red in naive CMYK
    img = load_image(p)
    assert img.source_mode == "CMYK" and img.source_format == "JPEG"
    assert img.rgb.shape == (16, 16, 3) and img.icc_profile is None
    np.testing.assert_allclose(img.rgb[8, 8], [1.0, 0.0, 0.0], atol=0.05)


def test_cmyk_jpeg_with_unusable_profile_falls_back(tmp_path):
    # An RGB profile on CMYK data cannot build a transform: fall back to the plain conversion, drop the profile.
    p = tmp_path / "cmyk_icc.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(p, icc_profile=_srgb_icc())
    img = load_image(p)
    assert img.icc_profile is None
    np.testing.assert_allclose(img.rgb[8, 8], [1.0, 0.0, 0.0], atol=0.05)


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 255, 32768, 65535]], dtype=np.uint16)
    p = tmp_path / "grey16.png"
    Image.fromarray(values).save(p)
    img = load_image(p)
    assert img.source_mode.startswith("I") and img.bit_depth == 16
    grey = img.rgb[..., 0]
    np.testing.assert_array_equal(img.rgb[..., 0], img.rgb[..., 2])
    assert grey[0, 0] == 0.0 and grey[0, 3] == 1.0
    assert grey[0, 1] == pytest.approx(255 / 65535)
    assert grey[0, 2] == pytest.approx(0.5, abs=1e-4)


def test_16bit_rgb_png(tmp_path):
    # Pillow decodes 16-bit RGB to 8-bit RGB; the file is still reported as 16-bit.
    data = (np.arange(4 * 4 * 3).reshape(4, 4, 3) * 1000).astype(">u2")
    raw = b"".join(b"\x00" + data[y].tobytes() for y in range(4))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    img = load_image_bytes(png)
    assert img.rgb.shape == (4, 4, 3) and img.bit_depth == 16
    np.testing.assert_allclose(img.rgb, data.astype(np.float64) / 65535, atol=1 / 255)


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (4, 2), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    im.putpixel((1, 0), 1)
    p = tmp_path / "pal.png"
    im.save(p, transparency=0)
    img = load_image(p)
    assert img.source_mode == "P"
    assert img.alpha is not None and img.alpha.shape == (2, 4)
    assert img.alpha[0, 1] == 1.0 and img.alpha[0, 0] == 0.0
    np.testing.assert_array_equal(img.rgb[0, 1], [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(img.rgb[1, 3], [1.0, 0.0, 0.0])


def test_palette_without_transparency():
    im = Image.new("P", (3, 3), 1)
    im.putpalette([0, 0, 0, 10, 20, 30] + [0] * (256 * 3 - 6))
    img = load_image_bytes(_png_bytes(im))
    assert img.alpha is None
    np.testing.assert_array_equal(quantize_rgb(img.rgb[1, 1]), [10, 20, 30])


def test_la_grey_with_alpha():
    la = np.zeros((3, 4, 2), dtype=np.uint8)
    la[..., 0] = 200
    la[..., 1] = 128
    img = load_image_bytes(_png_bytes(Image.fromarray(la, mode="LA")))
    assert img.source_mode == "LA"
    np.testing.assert_array_equal(quantize_rgb(img.rgb), np.full((3, 4, 3), 200, np.uint8))
    np.testing.assert_array_equal(quantize_rgb(img.alpha), np.full((3, 4), 128, np.uint8))


def test_l_and_1bit_and_f_modes(tmp_path):
    grey = load_image_bytes(_png_bytes(Image.new("L", (2, 2), 51)))
    np.testing.assert_allclose(grey.rgb, 0.2, atol=1e-7)

    bw = Image.new("1", (2, 2), 0)
    bw.putpixel((0, 0), 1)
    one = load_image_bytes(_png_bytes(bw))
    assert one.rgb[0, 0].tolist() == [1.0, 1.0, 1.0] and one.rgb[1, 1].tolist() == [0.0, 0.0, 0.0]

    p = tmp_path / "float.tiff"
    Image.fromarray(np.array([[0.0, 127.5, 255.0, 300.0]], dtype=np.float32), mode="F").save(p)
    f = load_image(p)
    assert f.source_mode == "F"
    np.testing.assert_allclose(f.rgb[0, :, 1], [0.0, 0.5, 1.0, 1.0], atol=1e-6)


def test_rgba_alpha_is_kept_even_when_opaque():
    img = load_image_bytes(_png_bytes(Image.new("RGBA", (3, 3), (1, 2, 3, 255))))
    assert img.alpha is not None and np.all(img.alpha == 1.0)


def test_exif_orientation_6(tmp_path):
    # Stored 40 wide x 20 tall; orientation 6 means "rotate 90 degrees clockwise to display".
    px = np.zeros((20, 40, 3), dtype=np.uint8)
    px[0, 0] = (255, 0, 0)  # stored top-left -> displayed top-right
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    p = tmp_path / "rotated.png"
    Image.fromarray(px).save(p, exif=exif.tobytes())
    img = load_image(p)
    assert img.rgb.shape == (40, 20, 3) and (img.width, img.height) == (20, 40)
    np.testing.assert_array_equal(img.rgb[0, 19], [1.0, 0.0, 0.0])
    assert img.rgb[0, 0].sum() == 0.0
    assert img.exif is not None
    back = Image.Exif()
    back.load(img.exif)
    assert back[0x0112] == 1 and back[0x010F] == "TestCam"


def test_exif_orientation_6_jpeg(tmp_path):
    px = np.zeros((20, 40, 3), dtype=np.uint8)
    px[:8, :8] = 255  # a block survives JPEG compression
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "rotated.jpg"
    Image.fromarray(px).save(p, exif=exif.tobytes(), quality=95)
    img = load_image(p)
    assert img.rgb.shape == (40, 20, 3)
    assert img.rgb[2, 17].min() > 0.9 and img.rgb[2, 2].max() < 0.1
    # The EXIF handed back can be written straight into a new JPEG.
    out = save_image(tmp_path / "out.jpg", quantize_rgb(img.rgb), exif=img.exif)
    with Image.open(out) as im:
        assert im.getexif()[0x0112] == 1 and im.size == (20, 40)


# ------------------------------------------------------------------------------------------------ writing


def test_png_round_trip_exact_with_metadata_and_icc(tmp_path):
    px = _noise(33, 17)
    icc = _srgb_icc()
    meta = {"Software": "stylecloak 0.1.0", "Comment": "protégé ✓ cloaked"}  # second value needs iTXt
    p = save_image(tmp_path / "sub" / "out.png", px, icc_profile=icc, metadata=meta)
    assert p == tmp_path / "sub" / "out.png" and p.is_file()
    img = load_image(p)
    np.testing.assert_array_equal(quantize_rgb(img.rgb), px)
    assert img.icc_profile == icc and img.alpha is None
    with Image.open(p) as im:
        assert im.text == meta
    assert _no_part_files(p.parent)


def test_rgba_round_trip(tmp_path):
    px = _noise(9, 11)
    a8 = _noise(9, 11, channels=1, seed=1)[..., 0]
    p = save_image(tmp_path / "rgba.png", px, alpha=a8.astype(np.float32) / 255)
    img = load_image(p)
    assert img.source_mode == "RGBA"
    np.testing.assert_array_equal(quantize_rgb(img.rgb), px)  # colour as stored, not premultiplied
    np.testing.assert_array_equal(quantize_rgb(img.alpha), a8)


def test_jpeg_and_webp_writing(tmp_path):
    px = np.full((16, 16, 3), 120, dtype=np.uint8)
    icc = _srgb_icc()
    j = save_image(tmp_path / "o.JPEG", px, icc_profile=icc, quality=90, metadata={"k": "v"})
    with Image.open(j) as im:
        assert im.format == "JPEG" and im.info.get("icc_profile") == icc
    w = save_image(tmp_path / "o.webp", px, alpha=np.full((16, 16), 0.5, np.float32))
    img = load_image(w)
    assert img.source_format == "WEBP" and img.alpha is not None
    np.testing.assert_allclose(img.alpha, 128 / 255, atol=0.02)


def test_jpeg_with_alpha_is_refused(tmp_path):
    with pytest.raises(ImageInputError, match="JPEG cannot hold transparency"):
        save_image(tmp_path / "x.jpg", np.zeros((2, 2, 3), np.uint8), alpha=np.ones((2, 2), np.float32))
    assert not (tmp_path / "x.jpg").exists()


def test_unknown_extension(tmp_path):
    with pytest.raises(ImageInputError, match="unsupported output format"):
        save_image(tmp_path / "x.bmp", np.zeros((2, 2, 3), np.uint8))


def test_bad_array_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        save_image(tmp_path / "x.png", np.zeros((2, 2, 3), np.float32))


def test_encoder_failure_leaves_target_untouched(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def boom(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError("encoder exploded")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="exploded"):
        save_image(target, np.zeros((4, 4, 3), np.uint8))
    assert target.read_bytes() == b"old"
    assert _no_part_files(tmp_path)


def test_failure_mid_write_removes_part_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def fail_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(imaging.os, "fsync", fail_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new data")
    assert target.read_bytes() == b"old"
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(tmp_path / "fresh.png", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no new file, no .part left behind


def test_atomic_write_replaces_and_uses_normal_permissions(tmp_path):
    target = tmp_path / "a" / "b.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    if os.name == "posix":
        assert target.stat().st_mode & 0o044  # not the 0600 of a temp file (with a usual umask)
    assert _no_part_files(target.parent)


# ------------------------------------------------------------------------------------------------ paths, tensors


def test_output_path_for(tmp_path):
    src = tmp_path / "wave.png"
    src.write_bytes(b"x")
    assert output_path_for(src, tmp_path / "out") == tmp_path / "out" / "wave.cloaked.png"
    same_dir = output_path_for(src, tmp_path)
    assert same_dir == tmp_path / "wave.cloaked.png" and same_dir != src
    assert output_path_for(tmp_path / "x.cloaked.png", tmp_path) == tmp_path / "x.cloaked.cloaked.png"
    assert output_path_for(src, tmp_path, suffix="", fmt="jpg") == tmp_path / "wave.jpg"
    with pytest.raises(ImageInputError, match="overwrite the input"):
        output_path_for(src, tmp_path, suffix="")
    with pytest.raises(ImageInputError, match="overwrite the input"):
        output_path_for(src, str(tmp_path / "." / ""), suffix="", fmt=".PNG")
    with pytest.raises(ImageInputError):
        output_path_for(src, tmp_path, fmt="gif")


def test_tensor_round_trip():
    rgb = np.random.default_rng(0).random((5, 6, 3)).astype(np.float64)
    t = image_to_tensor(rgb)
    assert t.shape == (1, 3, 5, 6) and t.dtype == torch.float32 and t.is_contiguous()
    assert torch.equal(t[0, 1], torch.from_numpy(rgb[..., 1].astype(np.float32)))
    back = tensor_to_image(t)
    assert back.shape == (5, 6, 3) and back.dtype == np.float32
    np.testing.assert_array_equal(back, rgb.astype(np.float32))
    # Copies both ways: editing one side never changes the other.
    one = np.zeros((1, 1, 3), np.float32)
    t1 = image_to_tensor(one)
    t1 += 1
    assert one.sum() == 0
    b1 = tensor_to_image(t1)
    b1 += 1
    assert float(t1.sum()) == 3.0


def test_quantize_rgb():
    x = np.array([-0.1, 0.0, 0.4 / 255, 0.6 / 255, 1.0, 1.5], dtype=np.float32)
    np.testing.assert_array_equal(quantize_rgb(x), [0, 0, 0, 1, 255, 255])
    levels = np.arange(256, dtype=np.float32) / 255
    np.testing.assert_array_equal(quantize_rgb(levels), np.arange(256))
    with pytest.raises(TypeError):
        quantize_rgb(np.zeros(3, np.uint8))


@pytest.mark.skipif(not GREAT_WAVE.is_file(), reason="shared painting not available")
def test_real_painting_loads():
    img = load_image(GREAT_WAVE)
    assert img.rgb.ndim == 3 and img.rgb.shape[2] == 3 and img.rgb.dtype == np.float32
    assert 0.0 <= float(img.rgb.min()) and float(img.rgb.max()) <= 1.0
    assert img.width > 100 and img.height > 100
