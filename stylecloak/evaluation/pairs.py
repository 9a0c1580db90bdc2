"""Evaluate cloaked files against their originals: the models a batch of pairs shares, what a cloaked file
records about how it was made, and one pair measured end to end (figures, model view, heat map, JSON).

``stylecloak evaluate`` is this module plus printing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..imaging import atomic_write_bytes, image_to_tensor, load_image, quantize_8bit, save_image
from ..models.base import LatentEncoder
from ..settings import CloakSettings
from ..targets.base import TargetStyle
from .evaluate import (
    EvaluationResult,
    evaluate_pair,
    model_view,
    model_view_path,
    pair_folders,
    result_path,
    visibility_map,
    visibility_map_path,
)
from .mimic import TrainedMimic
from .surrogate_figure import measure_surrogate_figure


@dataclass
class PairPlan:
    """What `evaluate ORIGINAL CLOAKED` measures: (name, original, cloaked) pairs, a warning line for each file
    without a partner, and where the model views go unless the caller says otherwise."""

    pairs: list[tuple[str, Path, Path]]
    unpaired: list[str]
    default_out: Path


def plan_pairs(original: str | Path, cloaked: str | Path) -> PairPlan:
    """Two files make one pair; two folders are paired by name (NAME.png with NAME.cloaked.png, or NAME.png in the
    other folder). Raises ValueError when one is a folder and the other is not."""
    original, cloaked = Path(original), Path(cloaked)
    if original.is_dir() != cloaked.is_dir():
        raise ValueError("ORIGINAL and CLOAKED must both be image files or both be folders")
    if not original.is_dir():
        return PairPlan([(original.stem, original, cloaked)], [], cloaked.parent / "model-view")
    pairing = pair_folders(original, cloaked)
    return PairPlan(list(pairing.pairs), list(pairing.unpaired), cloaked / "model-view")


def _recorded_aim(recorded: dict[str, Any]) -> CloakSettings:
    """The shrinks a cloak recorded that it aimed at (``mimic_downscales``, or ``mimic_sizes`` measured on
    ``mimic_size_of``), as settings checked by their own rules, so that ``view_factors`` gives this image's
    factors as the cloak computed them. ValueError naming what the file records."""
    downscales, sizes = recorded.get("mimic_downscales") or [], recorded.get("mimic_sizes") or []
    if not isinstance(downscales, list) or not isinstance(sizes, list):
        raise ValueError(f"records shrinks that are not lists ({downscales!r}, {sizes!r})")
    measure = recorded.get("mimic_size_of", CloakSettings.mimic_size_of)
    try:
        return CloakSettings(mimic_downscales=tuple(downscales), mimic_sizes=tuple(sizes), mimic_size_of=measure)
    except ValueError as error:
        raise ValueError(f"records settings it cannot have been cloaked with: {error}") from None


def recorded_settings(path: str | Path) -> dict[str, Any]:
    """The cloak settings recorded in a cloaked file (PNG text chunk, or JPEG comment), or {} if none."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            text = im.info.get("stylecloak")
            comment = im.info.get("comment", b"")
    except Exception:  # best effort: an unreadable file is reported by load_image, with a proper message
        return {}
    if text is None and isinstance(comment, bytes):  # JPEG: "key: value" lines, as save_image writes them
        for line in comment.decode("utf-8", "replace").splitlines():
            if line.startswith("stylecloak: "):
                text = line[len("stylecloak: ") :]
    try:
        recorded = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    settings = recorded.get("settings") if isinstance(recorded, dict) else None
    return settings if isinstance(settings, dict) else {}


@dataclass
class EvaluationModels:
    """What every pair of a batch shares: the device, both LPIPS nets, encoders by spec, a reference target."""

    device: torch.device
    lpips_alex: torch.nn.Module
    lpips_vgg: torch.nn.Module
    encoders: dict[str, LatentEncoder] = field(default_factory=dict)
    transfer: TargetStyle | None = None
    # A surrogate diffusion model (`evaluate --surrogate FILE`) and its file, for the `away` term's figure.
    surrogate: TrainedMimic | None = None
    surrogate_path: Path | None = None

    def encoder(self, spec: str) -> LatentEncoder:
        from ..models.encoders import load_encoder

        if spec not in self.encoders:
            self.encoders[spec] = load_encoder(spec, self.device)
        return self.encoders[spec]


def load_evaluation_models(
    device: str = "auto",
    encoder: str | None = None,
    target: str | None = None,
    target_images: str | None = None,
    surrogate: str | None = None,
) -> EvaluationModels:
    """Load what the whole batch needs, checking ``encoder`` and ``target`` (a catalogue name) on the way, and the
    ``surrogate`` file whose figure every pair then gets. Raises (ModelNotFoundError, KeyError, ValueError,
    RuntimeError, OSError) with a one-line message."""
    from ..devices import resolve_device
    from ..models.lpips import load_lpips
    from ..targets import get_target
    from ..targets.resolve import TargetRequest, resolve_target

    resolved_device = resolve_device(device)
    models = EvaluationModels(resolved_device, load_lpips("alex", resolved_device), load_lpips("vgg", resolved_device))
    if encoder:
        models.encoder(encoder)
    if target_images:
        models.transfer = resolve_target(TargetRequest(reference_images=target_images), [], resolved_device).style
    elif target:
        get_target(target)
    if surrogate:
        from ..models.surrogate import load_surrogate_file

        models.surrogate = load_surrogate_file(surrogate, resolved_device)
        models.surrogate_path = Path(surrogate).expanduser()
    return models


def evaluate_files(
    name: str,
    original_path: Path,
    cloaked_path: Path,
    out_dir: Path,
    models: EvaluationModels,
    target: str | None = None,
    encoder: str | None = None,
    seed: int | None = None,
    robustness: bool = True,
) -> EvaluationResult:
    """Evaluate one pair of files and write its model view, heat map and JSON into ``out_dir``. The target,
    encoder and seed default to what the cloaked file records. Raises with a one-line message for anything wrong."""
    from ..models.encoders import DEFAULT_ENCODER
    from ..models.weights import user_cache_dir
    from ..targets import get_target
    from ..targets.at_mimic_size import target_at_mimic_size
    from ..targets.cache import render_cached

    started = time.perf_counter()
    recorded = recorded_settings(cloaked_path)
    target_style = models.transfer
    if target_style is None:
        target_name = target or recorded.get("target")
        if not isinstance(target_name, str):
            raise ValueError("does not record its target style; pass --target NAME")
        if target_name.startswith("refs-") and not target:
            raise ValueError(f"was cloaked toward reference images ({target_name}); pass --target-images DIR")
        target_style = get_target(target_name)
    recorded_encoder = recorded.get("encoder")
    model = models.encoder(encoder or (recorded_encoder if isinstance(recorded_encoder, str) else DEFAULT_ENCODER))
    seed = seed if seed is not None else recorded.get("seed", 0)
    if not isinstance(seed, int):
        raise ValueError(f"records a seed that is not a whole number ({seed!r}); pass --seed N")
    try:
        original_image = load_image(original_path)
    except ValueError as exc:  # ImageInputError: say which of the two files it is
        raise ValueError(f"original {original_path}: {exc}") from None
    cloaked_image = load_image(cloaked_path)
    if original_image.rgb.shape != cloaked_image.rgb.shape:
        raise ValueError(
            f"sizes differ: original {original_image.width}x{original_image.height}, "
            f"cloaked {cloaked_image.width}x{cloaked_image.height}"
        )
    original = quantize_8bit(image_to_tensor(original_image.rgb).to(models.device))
    cloaked = quantize_8bit(image_to_tensor(cloaked_image.rgb).to(models.device))
    # The shrinks the cloak aimed at, as it computed them for this image (none when the file records no settings).
    aimed = _recorded_aim(recorded).view_factors(tuple(original.shape[-2:])) if recorded else ()
    if recorded.get("target_at_mimic_size") is True:  # the cloak aimed at the target drawn at the mimic's size
        target_style = target_at_mimic_size(target_style, aimed, original.shape[-2:])
    rendered = render_cached(target_style, original, seed, user_cache_dir() / "targets").to(models.device)
    result = evaluate_pair(
        original,
        cloaked,
        rendered,
        model,
        models.lpips_alex,
        models.lpips_vgg,
        target_name=target_style.name,
        robustness=robustness,
        aimed_shrinks=aimed,
    )
    result.original, result.cloaked = str(original_path), str(cloaked_path)
    made_with = recorded.get("surrogate")
    result.made_with_surrogate = made_with if isinstance(made_with, str) else None
    if models.surrogate is not None and models.surrogate_path is not None:
        result.surrogate_figure = measure_surrogate_figure(
            models.surrogate, models.surrogate_path, model, original, cloaked, recorded
        )
    if model.can_decode:
        view = model_view_path(out_dir, name, [original_path, cloaked_path])
        result.model_view = str(save_image(view, model_view(model, original, cloaked)))
    heatmap = visibility_map_path(out_dir, name, [original_path, cloaked_path])
    result.visibility_map = str(save_image(heatmap, visibility_map(original, cloaked)))
    result.seconds = time.perf_counter() - started
    # Kept beside the model view, so that `report.build_report(OUT)` finds every pair's numbers and images.
    atomic_write_bytes(
        result_path(out_dir, name, [original_path, cloaked_path]),
        (json.dumps(result.to_dict(), indent=1) + "\n").encode(),
    )
    return result


def evaluate_plan(
    plan: PairPlan,
    models: EvaluationModels,
    out_dir: Path | None = None,
    target: str | None = None,
    encoder: str | None = None,
    seed: int | None = None,
    robustness: bool = True,
) -> Iterator[tuple[Path, EvaluationResult | Exception]]:
    """Each pair of ``plan`` measured in turn (see :func:`evaluate_files`; ``out_dir`` None: the plan's default):
    the cloaked file with its result, or with the exception that stopped it, so that one bad pair never stops the
    others."""
    for name, original, cloaked in plan.pairs:
        try:
            result: EvaluationResult | Exception = evaluate_files(
                name, original, cloaked, out_dir or plan.default_out, models, target, encoder, seed, robustness
            )
        except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
            result = exc
        yield cloaked, result
