"""Cloak images end to end: load models once, render the target, optimise, save, and measure what was saved."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._version import __version__
from .devices import resolve_device
from .imaging import LoadedImage, image_to_tensor, load_image, output_path_for, quantize_8bit, quantize_rgb, save_image
from .metrics import mimic_view_factors, progress_tables, scale_fraction, scale_key, target_progress
from .models.encoders import LatentEncoder, load_encoder
from .models.lpips import load_lpips
from .models.weights import user_cache_dir
from .optimize import CloakOutcome, OptimizerConfig, ProgressCallback, optimize_cloak
from .settings import CloakSettings
from .targets import TargetStyle, get_target
from .targets.at_mimic_size import target_at_mimic_size
from .targets.cache import render_cached
from .visibility import VisibilityFigures, measure_visibility

if TYPE_CHECKING:
    from .evaluation.mimic import TrainedMimic
    from .models.surrogate import CombinedTerm, DenoiserTerm


def load_surrogate_model(settings: CloakSettings, device: torch.device) -> TrainedMimic | None:
    """The surrogate diffusion model of ``settings.surrogate``, or None. Raises ValueError with a one-line reason
    when the file is missing or not a surrogate."""
    if settings.surrogate is None:
        return None
    from .models.surrogate import load_surrogate_file

    return load_surrogate_file(settings.surrogate, device)


def load_denoiser(
    settings: CloakSettings, device: torch.device, target_name: str | None = None, model: TrainedMimic | None = None
) -> DenoiserTerm | CombinedTerm | None:
    """The surrogate's term that ``settings`` asks for (``surrogate_mode``, ``surrogate_weight``,
    ``surrogate_guidance``, ``surrogate_levels``) for a cloak
    toward the catalogue target ``target_name`` (default: ``settings.target``), or None without a surrogate.
    ``model`` is the loaded surrogate (default: loaded from ``settings.surrogate``). Raises ValueError with a
    one-line reason (see :func:`load_surrogate_model` and :func:`stylecloak.models.surrogate.denoiser_for`)."""
    model = model if model is not None else load_surrogate_model(settings, device)
    if model is None:
        return None
    from .models.surrogate import denoiser_for

    name = settings.target if target_name is None else target_name
    return denoiser_for(
        model,
        settings.surrogate_mode,
        name,
        settings.surrogate_weight,
        settings.seed,
        guidance=settings.surrogate_guidance,
        levels=settings.surrogate_levels,
    )


@dataclass
class CloakReport:
    """What one cloak achieved, measured on the 8-bit image as saved (docs/metrics.md)."""

    input: str | None
    output: str | None
    target: str
    encoder: str
    budget: float
    lpips: float
    target_progress: float
    seconds: float
    # The local visibility figures (stylecloak.visibility), measured on the saved image like ``lpips``.
    ssim: float
    ssim_window_min: float
    psnr: float | None  # dB; None when nothing changed (infinite PSNR is not valid JSON)
    max_change: int  # 8-bit levels
    # The bounds that the best step's full change broke, so that less of it was written (empty: none).
    limited_by: list[str]
    width: int
    height: int
    steps: int
    seed: int
    intensity: str | None
    quality: str | None
    # ``target_progress`` with the original, the cloak and the target all shrunk to half size, as a mimic that
    # trains at half the posted size sees them (docs/protection.md: the mimic's response follows this figure,
    # not the full-size one); None when half size is too small for the encoder.
    target_progress_half: float | None = None
    # The same at half size for the decoder's image of the latents (metrics.decoded_target_progress): what a
    # latent mimic can give back. At 512 px the mimic's response followed this figure where the latent one
    # did not (docs/protection.md, "What the decoder renders"). None without a decoder or at too small a size.
    decoded_progress_half: float | None = None
    # Where the cloak aimed, when half size is not among its aims (``--mimic-downscales 4``, or the per-image
    # factors of ``--mimic-sizes``): the same two figures at each aimed shrink, keyed as evaluate's tables
    # ("3.51x": [latent, decoded]; decoded None without a decoder), so that the report is read where the cloak
    # works and not only at a half size it never aimed at. Empty when half size is aimed at.
    progress_at_aim: dict[str, list[float | None]] = field(default_factory=dict)
    version: str = __version__

    def summary(self) -> str:
        """One line for people: where the output is, its visibility figures, its effect and its seconds."""
        psnr = "identical" if self.psnr is None else f"{self.psnr:.1f} dB"
        at_half = []
        if self.target_progress_half is not None:
            at_half.append(f"at half size {self.target_progress_half:.2f}")
        if self.decoded_progress_half is not None:
            at_half.append(f"decoder's image at half size {self.decoded_progress_half:.2f}")
        for key, (latent, decoded) in self.progress_at_aim.items():
            at_aim = f"at its aim {scale_fraction(key)} {'(too small)' if latent is None else f'{latent:.2f}'}"
            at_half.append(at_aim + ("" if decoded is None else f", decoder's image there {decoded:.2f}"))
        half = f" ({', '.join(at_half)})" if at_half else ""
        return (
            f"{self.output}  lpips {self.lpips:.3f} (budget {self.budget})  ssim {self.ssim:.3f}  "
            f"worst window {self.ssim_window_min:.3f}  psnr {psnr}  target progress "
            f"{self.target_progress:.2f}{half}  {self.seconds:.0f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Cloaker:
    """Holds the loaded models for a batch, so that many images share one load."""

    def __init__(
        self,
        settings: CloakSettings | None = None,
        encoder: LatentEncoder | None = None,
        perceptual: torch.nn.Module | None = None,
        cache_targets: bool = True,
        target_cache_dir: Path | None = None,
        target: TargetStyle | None = None,
        denoiser: DenoiserTerm | CombinedTerm | None = None,
        surrogate_model: TrainedMimic | None = None,
    ) -> None:
        """Rendered targets are kept in ``target_cache_dir`` (default: ``<user cache>/targets``) unless
        ``cache_targets`` is false. ``target`` is a target style object that is not in the catalogue (reference
        images); otherwise ``settings.target`` names one. ``denoiser`` (experimental) is a surrogate diffusion
        model's term in the optimiser's loss (:mod:`stylecloak.models.surrogate`), used as given for every
        target; without it the term is built from ``settings`` (``surrogate_mode``) for this cloaker's target,
        through ``surrogate_model`` (default: loaded from ``settings.surrogate``)."""
        self.settings = settings or CloakSettings()
        self.target_cache_dir = (target_cache_dir or user_cache_dir() / "targets") if cache_targets else None
        self.device = resolve_device(self.settings.device)
        self.target = target if target is not None else get_target(self.settings.target)
        self.encoder = encoder if encoder is not None else load_encoder(self.settings.encoder, self.device)
        self.perceptual = perceptual if perceptual is not None else load_lpips(self.settings.lpips_net, self.device)
        self._given_denoiser = denoiser is not None
        self.surrogate_model = (
            surrogate_model
            if surrogate_model is not None or denoiser is not None
            else load_surrogate_model(self.settings, self.device)
        )
        # A target outside the catalogue (reference images) has no class in the surrogate: None, and
        # ``toward-target`` says so when it is asked for.
        target_name = self.settings.target if target is None else None
        self.denoiser = (
            denoiser
            if denoiser is not None
            else load_denoiser(self.settings, self.device, target_name, self.surrogate_model)
        )

    def retarget(self, name: str, style: TargetStyle | None = None) -> Cloaker:
        """A cloaker for another target (a catalogue ``name``, or ``style`` when it is not in the catalogue) that
        shares this one's loaded models and target cache."""
        return Cloaker(
            replace(self.settings, target=name),
            encoder=self.encoder,
            perceptual=self.perceptual,
            cache_targets=self.target_cache_dir is not None,
            target_cache_dir=self.target_cache_dir,
            target=style,
            # A given term stays; one built from the settings is built again for the new target (the
            # ``toward-target`` class changes with it), from the model already loaded.
            denoiser=self.denoiser if self._given_denoiser else None,
            surrogate_model=self.surrogate_model,
        )

    def optimizer_config(self, size: tuple[int, ...]) -> OptimizerConfig:
        """The optimiser's config for an image of ``size`` (height, width)."""
        return OptimizerConfig.from_settings(self.settings, size)

    def render_target(self, image: torch.Tensor) -> torch.Tensor:
        """The target for ``image`` (8-bit values) at the image's size, cached by content: rendered at that size,
        or with ``target_at_mimic_size`` at the smallest size the cloak is optimised for, then enlarged."""
        s = self.settings
        style = (
            target_at_mimic_size(self.target, s.view_factors(image.shape[-2:]), image.shape[-2:])
            if s.target_at_mimic_size
            else self.target
        )
        return render_cached(style, image, s.seed, self.target_cache_dir).to(self.device)

    def cloak_rgb(self, rgb: np.ndarray, progress: ProgressCallback | None = None) -> tuple[np.ndarray, CloakReport]:
        """Cloak float RGB (HxWx3 in [0, 1]); returns the 8-bit cloaked RGB and its report."""
        started = time.perf_counter()
        original = quantize_8bit(image_to_tensor(rgb).to(self.device))
        outcome, target = self._optimize(original, progress)
        cloaked_uint8 = quantize_rgb(outcome.cloaked[0].permute(1, 2, 0).cpu().numpy())
        # The optimiser measured its 8-bit result on the whole image: those are the saved file's figures.
        assert outcome.visibility is not None
        return cloaked_uint8, self._report(
            original, outcome.cloaked, target, outcome, outcome.visibility, outcome.target_progress, started
        )

    def _optimize(self, original: torch.Tensor, progress: ProgressCallback | None) -> tuple[CloakOutcome, torch.Tensor]:
        """The optimiser's outcome, and the target it aimed at (rendered once: the report measures against it)."""
        target = self.render_target(original)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.settings.seed)
            config = self.optimizer_config(original.shape[-2:])
            return optimize_cloak(
                original, target, self.encoder, self.perceptual, config, progress, self.denoiser
            ), target

    def _report(
        self,
        original: torch.Tensor,
        cloaked: torch.Tensor,
        target: torch.Tensor,
        outcome: CloakOutcome,
        figures: VisibilityFigures,
        progress: float,
        started: float,
    ) -> CloakReport:
        """The report of ``cloaked`` (the image as saved), with the figures already measured on it."""
        s = self.settings
        # Where a mimic looks: one more encode of each image at a quarter of the pixels, and the decoder's image
        # of those latents (tiled: bounded memory on large images).
        aimed = mimic_view_factors(s.view_factors(tuple(original.shape[-2:])), tuple(original.shape[-2:]))
        # Half size always (the figure every report has); each aimed shrink too when half size is not aimed at.
        elsewhere = [] if any(scale_key(f) == "2x" for f in aimed) else aimed
        latent, decoded = progress_tables(self.encoder, original, cloaked, target, (2, *elsewhere), s.tile_size)
        half, decoded_half = latent["2x"], decoded.get("2x")
        at_aim = {scale_key(f): [latent[scale_key(f)], decoded.get(scale_key(f))] for f in elsewhere}
        return CloakReport(
            input=None,
            output=None,
            target=s.target,
            encoder=self.encoder.name,
            budget=s.budget,
            lpips=figures.lpips,
            target_progress=progress,
            seconds=time.perf_counter() - started,
            ssim=figures.ssim,
            ssim_window_min=figures.ssim_window_min,
            psnr=figures.psnr,
            max_change=figures.max_change,
            limited_by=list(outcome.limited_by),
            width=original.shape[-1],
            height=original.shape[-2],
            steps=outcome.steps_run,
            seed=s.seed,
            intensity=s.intensity,
            quality=s.quality,
            target_progress_half=half,
            decoded_progress_half=decoded_half,
            progress_at_aim=at_aim,
        )

    def cloak_file(
        self,
        path: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        fmt: str = "png",
        progress: ProgressCallback | None = None,
    ) -> CloakReport:
        """Cloak one file into ``out_dir/<stem>.cloaked.<fmt>`` and measure the file as written.

        The visibility bounds hold for the 8-bit image that is written. A PNG holds exactly those pixels; JPEG and
        WebP add their own loss (JPEG at quality 95 alone moves a painting's pixels by up to about 18 levels, and
        a one-level change of its input can move its output by as much), which no bound on the cloak can cover.
        The written file is read back: if its pixels are the optimised ones, the optimiser's figures hold;
        otherwise they are measured again against the original, so that what we report is what a scraper gets.
        """
        source = load_image(path)
        report = self.cloak_loaded(source, output_path_for(path, out_dir, fmt=fmt), progress)
        return replace(report, input=str(path))

    def cloak_loaded(
        self, source: LoadedImage, destination: Path, progress: ProgressCallback | None = None
    ) -> CloakReport:
        """Cloak an image already read (from a file or bytes) into ``destination``, whose suffix sets the format;
        the file is measured as written, as :meth:`cloak_file` says. The written bytes depend only on the image,
        the settings and the destination's format, not on its name or folder."""
        started = time.perf_counter()
        original = quantize_8bit(image_to_tensor(source.rgb).to(self.device))
        outcome, target = self._optimize(original, progress)
        assert outcome.visibility is not None
        cloaked_uint8 = quantize_rgb(outcome.cloaked[0].permute(1, 2, 0).cpu().numpy())
        metadata = {
            "Software": f"stylecloak {__version__}",
            "stylecloak": json.dumps(
                {
                    "version": __version__,
                    "settings": self.settings.to_dict(),
                    "visibility": outcome.visibility.to_dict(),
                },
                sort_keys=True,
            ),
        }
        save_image(
            destination,
            cloaked_uint8,
            alpha=source.alpha,
            icc_profile=source.icc_profile,
            metadata=metadata,
            exif=source.exif,
        )
        saved = image_to_tensor(load_image(destination).rgb).to(self.device)
        figures, progress_value = outcome.visibility, outcome.target_progress
        if not torch.equal(saved, outcome.cloaked):
            figures = measure_visibility(self.perceptual, original, saved)
            progress_value = target_progress(self.encoder, original, saved, target, self.settings.tile_size)
        report = self._report(original, saved, target, outcome, figures, progress_value, started)
        return replace(report, output=str(destination))


def cloak(
    image: str | os.PathLike[str] | np.ndarray | LoadedImage,
    intensity: str = "medium",
    quality: str = "default",
    target: str | None = None,
    settings: CloakSettings | None = None,
    progress: Callable[[Any], None] | None = None,
    **overrides: Any,
) -> tuple[np.ndarray, CloakReport]:
    """Cloak one image; returns the cloaked 8-bit RGB array (HxWx3) and its report.

    ``image`` is a path, a loaded image, or an RGB array (uint8, or float in [0, 1]). ``settings`` overrides the
    presets; any :class:`CloakSettings` field may also be passed as a keyword (``steps=10``, ``budget=0.04``).
    """
    if settings is None:
        if target is not None:
            overrides["target"] = target
        settings = CloakSettings.from_presets(intensity, quality, **overrides)  # type: ignore[arg-type]
    elif overrides or target is not None:
        settings = replace(settings, **overrides, **({"target": target} if target else {}))
    if isinstance(image, (str, os.PathLike)):
        rgb = load_image(Path(image)).rgb
    elif isinstance(image, LoadedImage):
        rgb = image.rgb
    else:
        rgb = _as_float_rgb(np.asarray(image))
    return Cloaker(settings).cloak_rgb(rgb, progress)


def _as_float_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if np.issubdtype(array.dtype, np.floating):
        return np.clip(array, 0.0, 1.0).astype(np.float32)
    raise ValueError(f"expected uint8 or float RGB, got {array.dtype}")
