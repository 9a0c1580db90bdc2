"""Evaluate one cloak: how visible it is, how far it moves the encoder, and whether that survives countermeasures.

Every number follows docs/metrics.md and is measured on the images as saved (8-bit). "What the model sees"
is the decoder's image of each latent: the original's beside the cloaked one's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..countermeasures import COUNTERMEASURES, Countermeasure, decode_latents
from ..imaging import OUTPUT_MARK, list_images, quantize_8bit, quantize_rgb, tensor_to_image
from ..metrics import (
    MIMIC_DOWNSCALES,
    TargetProgress,
    lpips_distance,
    mimic_view_factors,
    progress_tables,
    scale_fraction,
    scale_key,
)
from ..models.encoders import LatentEncoder
from ..models.tiled import TiledEncoder
from ..models.vgg import VGG16Features
from ..visibility import change_heatmap, measure_visibility
from .nst_mimic import NSTMimicConfig, style_source_progress
from .surrogate_figure import SurrogateFigure

# White columns between the two halves of the "what the model sees" image.
MODEL_VIEW_GAP = 8
# The band above the two halves that names them.
MODEL_VIEW_LABEL_HEIGHT = 14
MODEL_VIEW_SUFFIX = ".model-view"
HEATMAP_SUFFIX = ".visibility"
RESULT_SUFFIX = ".evaluation.json"
CLOAKED_MARK = OUTPUT_MARK + "."  # the naming rule is imaging.output_path_for's
# The long side at which `stylecloak mimic --attack nst` takes the art: where style_transfer_progress looks.
STYLE_TRANSFER_SIZE = NSTMimicConfig.image_size


@dataclass
class EvaluationResult:
    """One original/cloaked pair, measured. ``robustness`` maps a countermeasure's name to the target progress
    left after it (``None`` where it cannot run, e.g. a round trip through an encoder without a decoder)."""

    target: str
    encoder: str
    width: int
    height: int
    lpips: float
    lpips_vgg: float
    psnr: float | None  # dB; None when the images are identical (infinite PSNR is not valid JSON)
    ssim: float
    ssim_window_min: float  # the lowest mean SSIM over 64 px windows: where the cloak is most visible
    max_change: int  # the largest change of any pixel channel, in 8-bit levels (0-255)
    target_progress: float
    robustness: dict[str, float | None] = field(default_factory=dict)
    # target_progress measured after shrinking original, cloak and target alike by 1x, 2x and 4x, as a mimic
    # does before training ("2x": half the size); None where the image would be too small.
    progress_by_scale: dict[str, float | None] = field(default_factory=dict)
    # The same for the decoder's image of the latents (metrics.decoded_target_progress): what a latent mimic can
    # give back; empty without a decoder.
    decoded_progress_by_scale: dict[str, float | None] = field(default_factory=dict)
    # The shrinks the cloak recorded that it aimed at, for this image (its --mimic-downscales, or the factors its
    # --mimic-sizes give this image's size; those that leave it too small skipped, as the optimiser skips them):
    # both tables above also hold each of them (key "3.51x"), so that a cloak aimed at a shrink other than 2x or
    # 4x is measured where it aimed.
    aimed_shrinks: list[float] = field(default_factory=list)
    # How far the style statistics that style transfer copies move toward the target (nst_mimic's
    # style_source_progress: VGG16 Gram features of the decoder's image at the attack's 128 px); None without a
    # decoder or without the robustness figures.
    style_transfer_progress: float | None = None
    # The experimental `away` term's figure (surrogate_figure.py), measured only with `evaluate --surrogate FILE`;
    # ``made_with_surrogate`` is the surrogate the cloaked file records it was made with (None: none recorded).
    surrogate_figure: SurrogateFigure | None = None
    made_with_surrogate: str | None = None
    original: str | None = None
    cloaked: str | None = None
    model_view: str | None = None
    visibility_map: str | None = None  # the heat map of the local change (NAME.visibility.png)
    seconds: float = 0.0

    def summary(self) -> str:
        """The readable report of one pair (several lines): what `stylecloak evaluate` prints."""
        psnr = "identical" if self.psnr is None else f"{self.psnr:.1f} dB"
        lines = [
            f"{self.original} -> {self.cloaked}  ({self.width}x{self.height}, target {self.target}, "
            f"encoder {self.encoder})",
            f"  lpips {self.lpips:.4f} (vgg {self.lpips_vgg:.4f})  psnr {psnr}  ssim {self.ssim:.4f}  "
            f"worst 64 px window ssim {self.ssim_window_min:.4f}  max change {self.max_change}/255",
            f"  target progress {self.target_progress:.3f}",
        ]
        if self.robustness:
            cells = [f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in self.robustness.items()]
            lines.append("  after countermeasures: " + ", ".join(cells))
        aimed = {scale_key(factor) for factor in self.aimed_shrinks}
        if self.progress_by_scale:
            lines.append(
                "  target progress where a mimic looks (shrunk as for training): "
                + _by_scale(self.progress_by_scale, aimed)
            )
        if self.decoded_progress_by_scale:
            lines.append(
                "  the same for what the decoder draws of the latents: "
                + _by_scale(self.decoded_progress_by_scale, aimed)
            )
        if self.style_transfer_progress is not None:
            lines.append(
                f"  style statistics a style transfer copies (the model's view at {STYLE_TRANSFER_SIZE} px): "
                f"{self.style_transfer_progress:.3f} of the way to the target"
            )
        if self.surrogate_figure is not None:
            lines += self.surrogate_figure.lines()
        elif self.made_with_surrogate:
            lines.append(
                f"  made with the term of the surrogate {self.made_with_surrogate}, which none of the figures above "
                "measures: add --surrogate with that file (or another surrogate) to see its figure"
            )
        if self.visibility_map:
            lines.append(f"  where the change is most visible: {self.visibility_map}")
        if self.model_view:
            lines.append(f"  what the model sees: {self.model_view}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _by_scale(table: dict[str, float | None], aimed: Collection[str] = ()) -> str:
    """``full size 0.41, 1/2 size (aimed at) 0.22, ...``: each shrink named as a fraction of the size."""
    cells = []
    for key, value in table.items():
        name = "full size" if key == "1x" else f"{scale_fraction(key)} size"
        mark = " (aimed at)" if key in aimed and key != "1x" else ""
        cells.append(f"{name}{mark} {'(too small)' if value is None else f'{value:.3f}'}")
    return ", ".join(cells)


def evaluate_pair(
    original: torch.Tensor,
    cloaked: torch.Tensor,
    target: torch.Tensor,
    encoder: LatentEncoder,
    lpips_alex: torch.nn.Module,
    lpips_vgg: torch.nn.Module,
    *,
    target_name: str = "",
    robustness: bool = True,
    countermeasures: Sequence[Countermeasure] = COUNTERMEASURES,
    tile_size: int = 512,
    aimed_shrinks: Sequence[float] = (),
) -> EvaluationResult:
    """Measure ``cloaked`` against ``original`` (1x3xHxW in [0, 1], same shape; both are rounded to 8 bits, as
    files hold them) and ``target`` (the target style's rendering of the original). With ``robustness``, also
    the figures where a mimic looks; the style-transfer figure reads LPIPS-VGG's own VGG16 (``lpips_vgg.net``)
    and is None where ``lpips_vgg`` has none or the encoder no decoder. ``aimed_shrinks`` (the factors the cloak
    aimed at) join the tables by scale beside 1x, 2x and 4x."""
    if original.shape != cloaked.shape or original.shape != target.shape:
        raise ValueError(
            f"shapes differ: original {tuple(original.shape)}, cloaked {tuple(cloaked.shape)}, "
            f"target {tuple(target.shape)}"
        )
    started = time.perf_counter()
    original, cloaked = quantize_8bit(original), quantize_8bit(cloaked)
    # Those the optimiser worked at: an aim that leaves the image too small for the encoder was skipped there.
    aimed_shrinks = mimic_view_factors(tuple(aimed_shrinks), tuple(original.shape[-2:]))
    progress = TargetProgress(encoder, original, target, tile_size)
    table: dict[str, float | None] = {}
    if robustness:
        for countermeasure in countermeasures:
            available = countermeasure.available(encoder)
            table[countermeasure.name] = progress(countermeasure.apply(cloaked, encoder)) if available else None
    figures = measure_visibility(lpips_alex, original, cloaked)
    by_scale, decoded_by_scale = (
        progress_tables(encoder, original, cloaked, target, scales_to_measure(aimed_shrinks), tile_size)
        if robustness
        else ({}, {})
    )
    style_vgg = getattr(lpips_vgg, "net", None)  # LPIPS-VGG's own VGG16: the same ImageNet weights the judge reads
    style_transfer = (
        style_source_progress(encoder, style_vgg, original, cloaked, target, STYLE_TRANSFER_SIZE)
        if robustness and encoder.can_decode and isinstance(style_vgg, VGG16Features)
        else None
    )
    return EvaluationResult(
        target=target_name,
        encoder=encoder.name,
        width=int(original.shape[-1]),
        height=int(original.shape[-2]),
        lpips=figures.lpips,
        lpips_vgg=lpips_distance(lpips_vgg, original, cloaked),
        psnr=figures.psnr,
        ssim=figures.ssim,
        ssim_window_min=figures.ssim_window_min,
        max_change=figures.max_change,
        target_progress=progress(cloaked),
        robustness=table,
        progress_by_scale=by_scale,
        decoded_progress_by_scale=decoded_by_scale,
        style_transfer_progress=style_transfer,
        aimed_shrinks=list(aimed_shrinks),
        seconds=time.perf_counter() - started,
    )


def scales_to_measure(aimed_shrinks: Sequence[float] = ()) -> list[float]:
    """1x, 2x, 4x and each aimed shrink above 1 that is not one of them (by its key), smallest first."""
    factors = {scale_key(factor): float(factor) for factor in (*MIMIC_DOWNSCALES, *aimed_shrinks) if factor >= 1}
    return sorted(factors.values())


def visibility_map(original: torch.Tensor, cloaked: torch.Tensor) -> np.ndarray:
    """Where the cloak is most visible (see :func:`stylecloak.visibility.change_heatmap`), 8-bit HxWx3."""
    return change_heatmap(quantize_8bit(original), quantize_8bit(cloaked))


def model_view(
    encoder: LatentEncoder, original: torch.Tensor, cloaked: torch.Tensor, tile_size: int = 512
) -> np.ndarray:
    """What the model sees: the decoder's image of ``E(original)`` (left) beside ``E(cloaked)`` (right), as an
    8-bit array with a white gap between them and a white band above, labelled "original" and "cloaked" (so that
    the file says which half is which). Raises ``NotImplementedError`` if the encoder cannot decode."""
    seen_original, seen_cloaked = model_view_pair(encoder, original, cloaked, tile_size)
    gap = np.full((seen_original.shape[0], MODEL_VIEW_GAP, 3), 255, dtype=np.uint8)
    pictures = np.concatenate([seen_original, gap, seen_cloaked], axis=1)
    return np.concatenate([_label_band(pictures.shape[1], seen_original.shape[1]), pictures], axis=0)


def _label_band(width: int, half: int) -> np.ndarray:
    """A white band of ``MODEL_VIEW_LABEL_HEIGHT`` px with the two halves' labels in black."""
    from PIL import Image, ImageDraw

    band = Image.new("RGB", (width, MODEL_VIEW_LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(band)
    draw.text((2, 2), "original: what the model sees", fill="black")
    draw.text((half + MODEL_VIEW_GAP + 2, 2), "cloaked: what the model sees", fill="black")
    return np.asarray(band, dtype=np.uint8)


def model_view_pair(
    encoder: LatentEncoder, original: torch.Tensor, cloaked: torch.Tensor, tile_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's images of ``E(original)`` and ``E(cloaked)``, each 8-bit HxWx3 at the image's size."""
    if not encoder.can_decode:
        raise NotImplementedError(f"encoder {encoder.name!r} has no decoder, so there is no image of what it sees")
    height, width = original.shape[-2:]
    tiled = TiledEncoder(encoder, height, width, tile_size)
    with torch.no_grad():
        seen = [
            quantize_rgb(tensor_to_image(decode_latents(encoder, tiled.encode(image), height, width)))
            for image in (original, cloaked)
        ]
    return seen[0], seen[1]


# ------------------------------------------------------------------------------------------- pairing folders


@dataclass
class Pairing:
    """Files of two folders matched by name: ``pairs`` as (name, original, cloaked), and one line per file
    that could not be paired."""

    pairs: list[tuple[str, Path, Path]]
    unpaired: list[str]


def cloaked_key(path: Path) -> str:
    """The name a cloaked file shares with its original: ``wave.cloaked.png`` -> ``wave``; otherwise the stem."""
    name = path.name
    return name[: name.index(CLOAKED_MARK)] if CLOAKED_MARK in name else path.stem


def _images(folder: Path) -> list[Path]:
    return [path for path in list_images(folder) if not _is_our_output(path)]


def _is_our_output(path: Path) -> bool:
    return any(suffix + "." in path.name for suffix in (MODEL_VIEW_SUFFIX, HEATMAP_SUFFIX))


def _by_key(files: list[Path], key: Any, role: str, unpaired: list[str]) -> dict[str, Path]:
    grouped: dict[str, list[Path]] = {}
    for path in files:
        grouped.setdefault(key(path), []).append(path)
    chosen = {}
    for name, paths in grouped.items():
        if len(paths) > 1:
            unpaired.append(f"{role} files {', '.join(p.name for p in paths)} share the name {name!r}; skipped")
        else:
            chosen[name] = paths[0]
    return chosen


def pair_folders(originals: str | os.PathLike[str], cloaked: str | os.PathLike[str]) -> Pairing:
    """Pair the images of two folders by name.

    Originals are the images in ``originals`` without ``.cloaked.`` in their name. Cloaked images are the
    ``NAME.cloaked.EXT`` files of ``cloaked`` if it has any (so one folder may hold both, as ``stylecloak cloak``
    writes them), otherwise every image there, matched by stem. Our own ``.model-view.`` images are ignored.
    """
    originals, cloaked = Path(originals), Path(cloaked)
    unpaired: list[str] = []
    original_files = [p for p in _images(originals) if CLOAKED_MARK not in p.name]
    cloaked_files = _images(cloaked)
    marked = [p for p in cloaked_files if CLOAKED_MARK in p.name]
    if marked or originals.resolve() == cloaked.resolve():
        cloaked_files = marked
    by_original = _by_key(original_files, lambda p: p.stem, "original", unpaired)
    by_cloaked = _by_key(cloaked_files, cloaked_key, "cloaked", unpaired)
    pairs = [(name, path, by_cloaked[name]) for name, path in sorted(by_original.items()) if name in by_cloaked]
    unpaired += [
        f"{path}: no cloaked image named {name}{CLOAKED_MARK}* or {name}.* in {cloaked}"
        for name, path in sorted(by_original.items())
        if name not in by_cloaked
    ]
    unpaired += [
        f"{path}: no original image named {name}.* in {originals}"
        for name, path in sorted(by_cloaked.items())
        if name not in by_original
    ]
    return Pairing(pairs, unpaired)


def _output_path(out_dir: str | os.PathLike[str], filename: str, inputs: Sequence[Path]) -> Path:
    path = Path(out_dir) / filename
    for source in inputs:
        if path.resolve() == source.resolve() or (path.exists() and source.exists() and os.path.samefile(path, source)):
            raise ValueError(f"{path} would overwrite an input; pass another --out")
    return path


def model_view_path(out_dir: str | os.PathLike[str], name: str, inputs: Sequence[Path]) -> Path:
    """``OUT_DIR/<name>.model-view.png``; raises ``ValueError`` rather than return the path of an input."""
    return _output_path(out_dir, f"{name}{MODEL_VIEW_SUFFIX}.png", inputs)


def visibility_map_path(out_dir: str | os.PathLike[str], name: str, inputs: Sequence[Path]) -> Path:
    """``OUT_DIR/<name>.visibility.png``; never the path of an input."""
    return _output_path(out_dir, f"{name}{HEATMAP_SUFFIX}.png", inputs)


def result_path(out_dir: str | os.PathLike[str], name: str, inputs: Sequence[Path]) -> Path:
    """``OUT_DIR/<name>.evaluation.json`` (what ``report.build_report`` collects); never the path of an input."""
    return _output_path(out_dir, f"{name}{RESULT_SUFFIX}", inputs)
