"""One mimicry experiment from folders on disk: what ``stylecloak mimic`` does, as library calls.

:func:`prepare_mimicry` reads the artist's clean and cloaked folders and the labelled folder of other styles,
loads the encoder and the judge, and checks the options; :func:`run_prepared_mimicry` runs the chosen attack
(the small latent diffusion mimic, the style transfer or LoRA) and writes ``report.json``. Both raise with a
one-line message: :class:`MimicryUsageError` for what the user asked wrongly, ValueError or RuntimeError for a run
that failed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..countermeasures import Countermeasure, get_countermeasure
from ..errors import first_line
from ..imaging import ImageInputError, image_to_tensor, list_images, load_image
from ..models.base import LatentEncoder
from ..options import DEFAULT_PURIFIERS
from .attack import MimicryReport, MimicryRequest
from .classifier import StyleClassifier
from .labelled import LabelledFolderError, read_labelled_folder
from .mimic import MIMIC_PRESETS, MimicConfig, with_config


class MimicryUsageError(ValueError):
    """The options or the folders cannot make an experiment (the command line's usage error)."""


@dataclass(frozen=True)
class MimicryOptions:
    """Everything one experiment takes; the defaults are the command line's (``stylecloak.options.MIMIC``)."""

    clean: Path
    cloaked: Path
    others: Path
    attack: str = "small"  # small | nst | lora
    base: str | None = None  # with lora: a local Stable Diffusion folder (diffusers format)
    lora_rank: int = 4
    preset: str = "quick"
    steps: int | None = None  # None: the attack's own default
    samples: int | None = None
    image_size: int | None = None
    purify: str = ",".join(DEFAULT_PURIFIERS)  # comma-separated countermeasure names, or "none"
    purify_clean: bool = False
    encoder: str = "taef2"
    device: str = "auto"
    judge: str = "linear"  # linear | centroid | texture | clip:PATH
    second_judge: str = "texture"  # the same choices, or "none"
    judge_renditions: bool = False  # the judges also learn the other styles rendered in every target style
    seed: int = 0


@dataclass
class PreparedMimicry:
    """An experiment ready to run: the request every attack takes, the encoder and the small mimic's config."""

    options: MimicryOptions
    request: MimicryRequest
    encoder: LatentEncoder
    config: MimicConfig

    def runs(self) -> int:
        purifications = len(self.request.purifiers) * (2 if self.request.purify_clean else 1)
        return 2 + purifications

    def steps(self) -> int:
        return self.options.steps or {"lora": 400, "nst": 100}.get(self.options.attack, self.config.steps)


def artwork_key(path: Path) -> str:
    """``a.cloaked.png`` and ``a.png`` name the same work."""
    return path.stem.removesuffix(".cloaked")


def load_art_folder(
    folder: Path, exclude_keys: frozenset[str] = frozenset(), skipped: Callable[[str], None] = lambda line: None
) -> tuple[list[torch.Tensor], list[str]]:
    """Every readable image of a folder (sorted by name), each unreadable one told to ``skipped`` and left out."""
    if not folder.is_dir():
        raise MimicryUsageError(f"{folder}: not a folder")
    images, names = [], []
    for path in list_images(folder):
        if artwork_key(path) in exclude_keys:
            continue
        try:
            images.append(image_to_tensor(load_image(path).rgb))
            names.append(path.name)
        except (ImageInputError, OSError) as exc:
            skipped(f"{path}: {exc}; skipped")
    return images, names


def load_other_styles(folder: Path, exclude_keys: frozenset[str]) -> dict[str, list[torch.Tensor]]:
    """The labelled other styles, without the works of ``exclude_keys`` (so the folder may hold the artist's too)."""
    others: dict[str, list[torch.Tensor]] = {}
    for item in read_labelled_folder(folder):
        if artwork_key(item.path) not in exclude_keys:
            others.setdefault(item.label, []).append(image_to_tensor(load_image(item.path).rgb))
    return others


def parse_purifiers(spec: str) -> list[Countermeasure]:
    if spec.strip().lower() in ("", "none"):
        return []
    return [get_countermeasure(name.strip()) for name in spec.split(",") if name.strip()]


def build_judge(spec: str, device: torch.device) -> tuple[StyleClassifier, str]:
    """``linear``/``centroid`` on VGG16 Gram features, ``texture``: a linear head on colour-blind texture
    statistics (no VGG), or ``clip:PATH``: a linear probe on CLIP embeddings."""
    from .classifier import FeatureStyleClassifier

    if spec == "texture":
        from .texture_features import TextureFeatureExtractor

        return FeatureStyleClassifier(TextureFeatureExtractor(), "linear"), "texture-linear"
    if spec.startswith("clip:"):
        from .clip import CLIPFeatureExtractor, clip_descriptor

        extractor = CLIPFeatureExtractor(clip_descriptor(spec[len("clip:") :], device))
        return FeatureStyleClassifier(extractor, "linear"), "clip-linear"  # type: ignore[arg-type]
    return gram_judge(spec, device)


def gram_judge(head: str, device: torch.device) -> tuple[StyleClassifier, str]:
    """The offline judge: VGG16 Gram features (at the classifier's 128 px working size) and ``head``."""
    from ..models.lpips import load_vgg16_features
    from .classifier import FeatureStyleClassifier
    from .style_features import GramFeatureExtractor

    extractor = GramFeatureExtractor(load_vgg16_features(device))
    return FeatureStyleClassifier(extractor, head), f"gram-{head}"


def prepare_mimicry(
    options: MimicryOptions,
    progress: Callable[[str, str, int, int], None] | None = None,
    tell: Callable[[str], None] = lambda line: None,
) -> PreparedMimicry:
    """Check the options, read the folders and load the models. ``tell`` gets notes and skipped files."""
    from ..devices import resolve_device
    from ..models.encoders import load_encoder
    from ..models.weights import ChecksumMismatchError, ModelNotFoundError

    if options.attack == "lora" and not options.base:
        raise MimicryUsageError("--attack lora needs --base PATH, a local Stable Diffusion folder in diffusers format")
    config = with_config(
        MIMIC_PRESETS[options.preset],
        steps=options.steps,
        samples=options.samples,
        seed=options.seed,
        image_size=options.image_size,
    )
    if config.steps < 1 or config.samples < 1:
        raise MimicryUsageError("--steps and --samples must be at least 1")
    if options.attack == "small" and config.image_size < config.crop:
        raise MimicryUsageError(f"--image-size must be at least the preset's {config.crop} px training crop")
    try:
        purifiers = parse_purifiers(options.purify)
        device = resolve_device(options.device)
        encoder = load_encoder(options.encoder, device)
        if not encoder.can_decode:
            raise ValueError(f"encoder {encoder.name!r} has no decoder: the mimic cannot turn its latents into images")
        clean, clean_names = load_art_folder(options.clean, skipped=tell)
        cloaked, _ = load_art_folder(options.cloaked, skipped=tell)
        others = load_other_styles(options.others, frozenset(artwork_key(Path(n)) for n in clean_names))
        judge, judge_name = build_judge(options.judge, device)
        second, second_name = (
            build_judge(options.second_judge, device) if options.second_judge != "none" else (None, "")
        )
        extra = {}
        if options.judge_renditions:
            from ..targets import available_targets
            from .attack import rendition_classes

            extra = rendition_classes(others, available_targets(), seed=options.seed)
    except MimicryUsageError:
        raise
    except (
        KeyError,
        ValueError,
        LabelledFolderError,
        ModelNotFoundError,
        ChecksumMismatchError,
        ImageInputError,
        OSError,
        RuntimeError,
    ) as exc:
        raise MimicryUsageError(first_line(exc)) from exc
    if not clean or not cloaked:
        raise MimicryUsageError(f"no readable images in {options.clean if not clean else options.cloaked}")
    if len(clean) != len(cloaked):
        tell(f"note: {len(clean)} clean and {len(cloaked)} cloaked images")
    request = MimicryRequest(
        clean,
        cloaked,
        others,
        judge,
        purifiers,
        device,
        judge_name=judge_name,
        purify_clean=options.purify_clean,
        judge_extra_classes=extra,
        second_judge=second,
        second_judge_name=second_name,
        progress=progress,
    )
    return PreparedMimicry(options, request, encoder, config)


def run_prepared_mimicry(prepared: PreparedMimicry, out_dir: Path) -> tuple[MimicryReport, dict[str, Any]]:
    """Run the attack, write ``out_dir/report.json`` and return the report with that file's contents."""
    options, request, encoder = prepared.options, prepared.request, prepared.encoder
    out_dir.mkdir(parents=True, exist_ok=True)
    request.out_dir = out_dir
    started = time.perf_counter()
    if options.attack == "lora":
        from .lora import LoraMimicConfig, run_lora_mimicry

        lora_config = LoraMimicConfig(
            steps=options.steps or LoraMimicConfig.steps,
            samples=options.samples or LoraMimicConfig.samples,
            resolution=options.image_size or LoraMimicConfig.resolution,
            rank=options.lora_rank,
            seed=options.seed,
        )
        report = run_lora_mimicry(request, options.base or "", lora_config, encoder)
    elif options.attack == "nst":
        from .nst_mimic import NSTMimicConfig, run_nst_mimicry

        nst_config = NSTMimicConfig(
            samples=options.samples or NSTMimicConfig.samples,
            steps=options.steps or NSTMimicConfig.steps,
            image_size=options.image_size or NSTMimicConfig.image_size,
            seed=options.seed,
        )
        report = run_nst_mimicry(request, encoder, nst_config)
    else:
        from .attack import run_mimicry

        report = run_mimicry(request, encoder, prepared.config)
    result = report.to_dict() | {
        "seconds": time.perf_counter() - started,
        "device": str(request.device),
        "encoder": encoder.name,
        "out": str(out_dir),
    }
    (out_dir / "report.json").write_text(json.dumps(result, indent=2))
    return report, result


def mimicry_summary(report: MimicryReport, result: dict[str, Any]) -> str:
    """The readable result: the judge's sanity and control, then each training set's protection success rate."""
    lines = [
        f"classifier {report.classifier}: attributes {report.classifier_sanity:.0%} of the artist's own clean crops "
        "to the artist"
    ]
    if report.control_artist_rate is not None:  # the small and nst attacks have a control; lora does not yet
        lines.append(
            f"control: it attributes {report.control_artist_rate:.0%} of the clean mimic's images of the other "
            "styles to the artist (the lower, the more its verdicts below mean)"
        )
    second = report.second_judge
    if second is not None:
        control = second.get("control_artist_rate")
        lines.append(
            f"second judge {second['name']}: knows {second['sanity']:.0%} of the artist's crops"
            + (f", control {control:.0%}" if control is not None else "")
        )
    lines.append(
        f"{'training set':24s} {'protection success':>18s} {'95% interval':>12s} {'P(artist)':>9s}"
        + (f" {'second judge':>12s}" if second else "")
        + "  predictions"
    )
    for condition in report.conditions:
        opinion = condition.second_opinion
        interval = condition.rate_interval
        lines.append(
            f"{condition.condition:24s} {condition.protection_success_rate:>18.0%}"
            + (f" {f'{interval[0]:.0%}-{interval[1]:.0%}':>12s}" if interval else f" {'-':>12s}")
            + (f" {condition.artist_probability:>9.2f}" if condition.artist_probability is not None else f" {'-':>9s}")
            + (f" {opinion['protection_success_rate']:>12.0%}" if opinion else "")
            + f"  {condition.predictions}"
        )
    lines.append("(the interval is what the count of verdicts allows; two trainings of the mimic differ by more)")
    lines.append(f"samples and report.json in {result['out']}/ ({result['seconds']:.0f} s)")
    return "\n".join(lines)
