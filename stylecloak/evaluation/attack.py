"""Run the mimicry attack on clean, cloaked and purified art, and measure the protection success rate.

One call trains one mimic per *condition* (clean art, cloaked art, cloaked art after each purification), each
from the same seed and on the same other styles, generates images in the artist's style from each, and asks one
style classifier (trained once, on clean art only) whose style they show.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..countermeasures import Countermeasure
from ..models.encoders import LatentEncoder
from ._intervals import wilson_interval
from ._provenance import images_digest, run_environment
from .classifier import StyleClassifier
from .mimic import (
    LatentSet,
    MimicConfig,
    ProgressCallback,
    TrainedMimic,
    decode_latents,
    encode_images,
    fine_tune_on_artist,
    generate_latents,
    latent_stats,
    resize_classes,
    resize_for_mimic,
    summarize_losses,
    train_base_model,
)

ARTIST_LABEL = "artist"


@dataclass
class MimicryRequest:
    """What every mimicry attack takes (the small latent diffusion mimic, the style transfer, LoRA): the artist's
    clean and cloaked works (the same works, 1x3xHxW in [0, 1]), clean works of other styles by label, the judge,
    the purifications to try on the cloaked set, and where to work and write."""

    clean: Sequence[torch.Tensor]
    cloaked: Sequence[torch.Tensor]
    others: Mapping[str, Sequence[torch.Tensor]]
    judge: StyleClassifier
    purifiers: Sequence[Countermeasure] = ()
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    out_dir: Path | None = None
    judge_name: str = "classifier"
    # Also train on the *clean* art after each purification: the control that tells a cloak surviving the
    # purification from a purification that blurs the style by itself.
    purify_clean: bool = False
    # More cloaked versions of the same works, by label (e.g. other intensities): one more condition each, all
    # against the same base model, judge and clean run, which is what a protection curve needs.
    more_cloaked: Mapping[str, Sequence[torch.Tensor]] = field(default_factory=dict)
    # Classes only the judge learns (see fit_judge_on_round_trips), e.g. rendition_classes(others, targets).
    judge_extra_classes: Mapping[str, Sequence[torch.Tensor]] = field(default_factory=dict)
    # A second, independent judge (e.g. texture statistics that ignore colour), trained and asked as the first.
    second_judge: StyleClassifier | None = None
    second_judge_name: str = ""
    # (condition, phase, done, total), e.g. ("cloaked", "training", 120, 400)
    progress: Callable[[str, str, int, int], None] | None = None


@dataclass
class ConditionResult:
    """One training run of the mimic, and what the classifier says of its images."""

    condition: str
    protection_success_rate: float  # share of generated images NOT attributed to the artist
    predictions: dict[str, int]  # label -> how many generated images got it
    samples: int
    loss_first: float
    loss_last: float
    seconds: float
    samples_image: str | None = None
    # The second judge's verdict on the same samples: {"protection_success_rate": r, "predictions": {...}}.
    second_opinion: dict[str, Any] | None = None
    # The judge's mean probability of the artist over the samples. The rate above counts verdicts; this
    # moves where the rate cannot (every sample still the artist's, or none), so it shows whether a cloak
    # moved the mimic at all, and it is less noisy between runs than a count of 48 verdicts.
    artist_probability: float | None = None
    # The 95% interval of the rate over these samples' verdicts (evaluation._intervals.wilson_interval): what
    # the count alone allows. Two trainings of the mimic differ by more (docs/protection.md), so a rate is
    # past a threshold only where this interval and repeated runs both say so.
    rate_interval: tuple[float, float] | None = None
    # The exact pixels this condition's attack was given to learn from (_provenance.images_digest; the mimic's and
    # the style transfer's after their resize, LoRA's at full size, as it resizes while training): two runs of
    # one seed can be compared only where these agree.
    training_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MimicryReport:
    artist_images: int
    other_styles: dict[str, int]
    config: MimicConfig
    classifier: str
    classifier_sanity: float  # share of the clean art's own crops the classifier attributes to the artist
    conditions: list[ConditionResult] = field(default_factory=list)
    base_seconds: float = 0.0
    # The control of the judge: the share of the clean-trained mimic's images of the *other* styles that it
    # attributes to the artist. A protection success rate means something only where this is low.
    control_artist_rate: float | None = None
    control_predictions: dict[str, dict[str, int]] = field(default_factory=dict)  # style -> verdicts
    # The second, independent judge: its name, sanity, control rate and control verdicts (None without one).
    second_judge: dict[str, Any] | None = None
    # Where the run ran (versions, thread count, processor): a seed repeats a run's verdicts only on the same
    # pixels and arithmetic (_provenance).
    environment: dict[str, Any] = field(default_factory=run_environment)

    def to_dict(self) -> dict[str, Any]:
        return {
            "artist_images": self.artist_images,
            "other_styles": self.other_styles,
            "config": self.config.to_dict(),
            "classifier": self.classifier,
            "classifier_sanity": self.classifier_sanity,
            "base_seconds": self.base_seconds,
            "conditions": [c.to_dict() for c in self.conditions],
            "control_artist_rate": self.control_artist_rate,
            "control_predictions": self.control_predictions,
            "second_judge": self.second_judge,
            "environment": self.environment,
        }


def random_crops(images: Sequence[torch.Tensor], size: int, per_image: int, seed: int) -> list[torch.Tensor]:
    """``per_image`` random ``size`` x ``size`` crops of each image (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    crops = []
    for image in images:
        height, width = image.shape[-2:]
        for _ in range(per_image):
            top = int(torch.randint(height - size + 1, (1,), generator=generator))
            left = int(torch.randint(width - size + 1, (1,), generator=generator))
            crops.append(image[..., top : top + size, left : left + size])
    return crops


def round_trip(encoder: LatentEncoder, images: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    with torch.no_grad():
        return [encoder.decode(encoder.encode(image.to(device))).cpu() for image in images]


def save_grid(images: Sequence[torch.Tensor], path: Path, columns: int = 8) -> Path:
    """The images (1x3xHxW, same size) in one PNG grid, for a person to look at."""
    rows = -(-len(images) // columns)
    height, width = images[0].shape[-2:]
    grid = np.full((rows * height, min(columns, len(images)) * width, 3), 255, dtype=np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        pixels = (image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        grid[row * height : (row + 1) * height, column * width : (column + 1) * width] = pixels
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path


def purified(
    images: Sequence[torch.Tensor], countermeasure: Countermeasure, encoder: LatentEncoder, device: torch.device
) -> list[torch.Tensor]:
    with torch.no_grad():
        return [countermeasure.apply(image.to(device), encoder).cpu() for image in images]


RENDITION_PREFIX = "rendition:"


def rendition_label(target_name: str) -> str:
    """The class of a catalogue target's renditions, for the judges and the surrogate alike."""
    return f"{RENDITION_PREFIX}{target_name}"


def rendition_classes(
    others: Mapping[str, Sequence[torch.Tensor]], targets: Sequence[Any], seed: int = 0
) -> dict[str, list[torch.Tensor]]:
    """Judge classes for "a different style": every other style's works rendered in each target style
    (``targets``: :class:`~stylecloak.targets.base.TargetStyle` objects), labelled ``rendition:NAME``. Never the
    artist's works, so that the judge cannot learn the artist's compositions under another name."""
    works = [image for images in others.values() for image in images]
    return {rendition_label(t.name): [t.render(image, seed=seed).clamp(0, 1) for image in works] for t in targets}


def attack_conditions(
    request: MimicryRequest,
    clean: Sequence[torch.Tensor],
    cloaked: Sequence[torch.Tensor],
    encoder: LatentEncoder | None,
    prepare: Callable[[Sequence[torch.Tensor]], list[torch.Tensor]] = list,
) -> list[tuple[str, list[torch.Tensor]]]:
    """The training sets every attack runs, by name: clean, cloaked, each of ``request.more_cloaked`` (as
    ``cloaked:LABEL``, after ``prepare``, the attack's own resizing), cloaked after each purifier and, with
    ``request.purify_clean``, clean after each purifier (``clean`` and ``cloaked`` as the attack prepared them)."""
    conditions: list[tuple[str, list[torch.Tensor]]] = [("clean", list(clean)), ("cloaked", list(cloaked))]
    conditions += [(f"cloaked:{label}", prepare(images)) for label, images in request.more_cloaked.items()]
    if not request.purifiers:
        return conditions
    if encoder is None:
        raise ValueError("purifiers need the encoder")
    sets = [("cloaked", cloaked)] + ([("clean", clean)] if request.purify_clean else [])
    for set_name, images in sets:
        conditions += [
            (f"{set_name}+{c.name}", purified(images, c, encoder, request.device)) for c in request.purifiers
        ]
    return conditions


def check_attack_inputs(
    clean: Sequence[torch.Tensor], cloaked: Sequence[torch.Tensor], others: Mapping[str, Sequence[torch.Tensor]]
) -> None:
    """What every mimicry attack needs: the artist's clean and cloaked art, and other styles to tell it from."""
    if not clean or not cloaked:
        raise ValueError("the attack needs the artist's clean and cloaked images")
    if not others:
        raise ValueError("the attack needs images of other styles, so that the classifier has something to tell apart")
    if ARTIST_LABEL in others:
        raise ValueError(f"{ARTIST_LABEL!r} is reserved for the artist; rename that style")


def fit_judge_on_round_trips(
    judge: StyleClassifier,
    clean: Sequence[torch.Tensor],
    others: Mapping[str, Sequence[torch.Tensor]],
    encoder: LatentEncoder,
    device: torch.device,
    config: MimicConfig,
    extra_classes: Mapping[str, Sequence[torch.Tensor]] | None = None,
) -> float:
    """Train ``judge`` once, on clean art as a latent model could at best reproduce it: decoder round trips of
    random crops of the mimic's training size (images already at the mimic's size), the same number for every
    style, so that generated images are judged in their own domain. ``extra_classes``: more labelled images the
    judge learns but the mimic never sees (renditions of the other styles' works in the target styles, so that
    "a different style" has a name). Returns the share of the artist's crops the judge attributes to the artist."""
    judge_images, judge_labels = [], []
    for label, images in [(ARTIST_LABEL, clean), *others.items(), *(extra_classes or {}).items()]:
        crops = random_crops(images, config.crop, -(-config.judge_crops_per_style // len(images)), config.seed)
        judge_images += round_trip(encoder, crops, device)
        judge_labels += [label] * len(crops)
    judge.fit(judge_images, judge_labels)
    artist_crops = [image for image, label in zip(judge_images, judge_labels) if label == ARTIST_LABEL]
    return sum(p == ARTIST_LABEL for p in judge.predict(artist_crops)) / len(artist_crops)


def fit_second_judge(report: MimicryReport, request: MimicryRequest, fit: Callable[[StyleClassifier], float]) -> None:
    """Train the request's second judge (if any) with ``fit``, as the first was, and note it in the report."""
    if request.second_judge is not None:
        sanity = fit(request.second_judge)
        report.second_judge = {"name": request.second_judge_name or "second", "sanity": sanity}


def fit_judge_on_images(
    judge: StyleClassifier,
    clean: Sequence[torch.Tensor],
    others: Mapping[str, Sequence[torch.Tensor]],
    extra_classes: Mapping[str, Sequence[torch.Tensor]] | None = None,
) -> float:
    """Train ``judge`` on the artist's clean images against the others (whole images, for attacks whose samples
    are images) and ``extra_classes`` (as in :func:`fit_judge_on_round_trips`); returns the share of the
    artist's own images it attributes to the artist."""
    images, labels = list(clean), [ARTIST_LABEL] * len(clean)
    for label, style_images in [*others.items(), *(extra_classes or {}).items()]:
        images += style_images
        labels += [label] * len(style_images)
    judge.fit(images, labels)
    return sum(p == ARTIST_LABEL for p in judge.predict(list(clean))) / len(clean)


def run_mimicry(request: MimicryRequest, encoder: LatentEncoder, config: MimicConfig) -> MimicryReport:
    """The attack on clean art, on cloaked art, and on cloaked art after each purifier. Images are 1x3xHxW in
    [0, 1]; the artist's clean and cloaked sets are the same works, the others are clean art of other styles."""
    clean, cloaked, others, classifier = request.clean, request.cloaked, request.others, request.judge
    device, out_dir, progress = request.device, request.out_dir, request.progress
    classifier_name = request.judge_name
    check_attack_inputs(clean, cloaked, others)
    size = config.image_size
    clean = [resize_for_mimic(image, size) for image in clean]
    cloaked = [resize_for_mimic(image, size) for image in cloaked]
    other_images = resize_classes(others, size)
    for name, images in [(ARTIST_LABEL, clean), (f"{ARTIST_LABEL} (cloaked)", cloaked), *other_images.items()]:
        small = [tuple(image.shape[-2:]) for image in images if min(image.shape[-2:]) < config.crop]
        if small:
            raise ValueError(f"{len(small)} image(s) of {name!r} are smaller than the {config.crop} px training crop")

    extra = resize_classes(request.judge_extra_classes, size)
    sanity = fit_judge_on_round_trips(classifier, clean, other_images, encoder, device, config, extra)

    other_sets = [LatentSet(label, encode_images(encoder, images, device)) for label, images in other_images.items()]
    # One latent scale for every run (like a model family's fixed scaling factor): from the other styles only,
    # so that the artist's set, clean or cloaked, does not change it.
    mean, std = latent_stats([z for latent_set in other_sets for z in latent_set.latents])
    conditions = attack_conditions(
        request, clean, cloaked, encoder, lambda images: [resize_for_mimic(image, size) for image in images]
    )

    report = MimicryReport(
        len(clean), {label: len(images) for label, images in other_images.items()}, config, classifier_name, sanity
    )
    fit_second_judge(
        report,
        request,
        lambda judge: fit_judge_on_round_trips(judge, clean, other_images, encoder, device, config, extra),
    )
    second = request.second_judge

    def reporter(name: str) -> ProgressCallback | None:
        return (lambda phase, done, total: progress(name, phase, done, total)) if progress else None

    # The attack is fine-tuning, as against Stable Diffusion: a base model first learns the other styles (the
    # artist's class exists but gets no images), then each condition fine-tunes a copy of it on the artist's
    # images plus the others. The base is trained once, so every condition starts from the same model.
    started = time.perf_counter()
    base = train_base_model(ARTIST_LABEL, other_sets, config, mean, std, device, reporter("base model"))
    report.base_seconds = time.perf_counter() - started
    for name, artist_images in conditions:
        started = time.perf_counter()
        step = reporter(name)
        artist_latents = encode_images(encoder, artist_images, device)
        mimic = fine_tune_on_artist(base, ARTIST_LABEL, artist_latents, other_sets, config, mean, std, device, step)
        latents = generate_latents(mimic, ARTIST_LABEL, config.samples, device, seed=config.seed, progress=step)
        samples = decode_latents(encoder, latents)
        report.conditions.append(
            judge_condition(name, samples, classifier, mimic.losses, started, out_dir, second, artist_images)
        )
        if name == "clean":
            _control(report, mimic, [s.label for s in other_sets], encoder, classifier, device, out_dir, second)
    return report


def _control(
    report: MimicryReport,
    mimic: TrainedMimic,
    other_labels: Sequence[str],
    encoder: LatentEncoder,
    judge: StyleClassifier,
    device: torch.device,
    out_dir: Path | None,
    second: StyleClassifier | None = None,
) -> None:
    """Ask the judges about the clean-trained mimic's images of each other style (as many in all as the artist
    got): how often do they say "artist" when the mimic was not asked for the artist?"""
    per_style = max(1, -(-mimic.config.samples // len(other_labels)))
    samples = {
        label: decode_latents(encoder, generate_latents(mimic, label, per_style, device, seed=mimic.config.seed + 1))
        for label in other_labels
    }
    record_control(report, samples, judge, out_dir, second)


def _control_of(
    judge: StyleClassifier, samples_by_style: Mapping[str, Sequence[torch.Tensor]]
) -> tuple[float | None, dict[str, dict[str, int]]]:
    wrong = total = 0
    predictions = {}
    for label, samples in samples_by_style.items():
        if not samples:
            continue
        verdicts = judge.predict(list(samples))
        predictions[label] = dict(sorted(Counter(verdicts).items()))
        wrong += sum(v == ARTIST_LABEL for v in verdicts)
        total += len(verdicts)
    return (wrong / total if total else None), predictions


def record_control(
    report: MimicryReport,
    samples_by_style: Mapping[str, Sequence[torch.Tensor]],
    judge: StyleClassifier,
    out_dir: Path | None,
    second: StyleClassifier | None = None,
) -> None:
    """The judges' control, for any attack: their verdicts on what the clean attack made *in each other style*,
    and the share of those each attributes to the artist (a sample grid per style). Styles with no samples are
    left out; with none at all, the report keeps no control."""
    report.control_artist_rate, report.control_predictions = _control_of(judge, samples_by_style)
    if second is not None and report.second_judge is not None:
        rate, predictions = _control_of(second, samples_by_style)
        report.second_judge |= {"control_artist_rate": rate, "control_predictions": predictions}
    if out_dir:
        for label, samples in samples_by_style.items():
            if samples:
                save_grid(list(samples), out_dir / f"control_{label}.png")


def samples_file_name(condition: str) -> str:
    """The sample grid's file name for a condition: ``samples_cloaked-high.png`` for ``cloaked:high`` (a colon
    is not allowed in a Windows file name)."""
    return f"samples_{condition.replace(':', '-')}.png"


def judge_condition(
    name: str,
    samples: Sequence[torch.Tensor],
    judge: StyleClassifier,
    losses: Sequence[float],
    started: float,
    out_dir: Path | None,
    second: StyleClassifier | None = None,
    training: Sequence[torch.Tensor] = (),
) -> ConditionResult:
    """What the judge (and the second judge, if any) says of one condition's generated ``samples``, with its
    training losses, a sample grid and the digest of the ``training`` images the attack learned from."""
    probabilities = judge.predict_proba(samples)
    predictions = [judge.labels[k] for k in probabilities.argmax(dim=1).tolist()]
    artist_probability = (
        float(probabilities[:, judge.labels.index(ARTIST_LABEL)].mean()) if ARTIST_LABEL in judge.labels else 0.0
    )
    second_opinion = None
    if second is not None:
        verdicts = second.predict(samples)
        second_opinion = {
            "protection_success_rate": sum(v != ARTIST_LABEL for v in verdicts) / len(verdicts),
            "predictions": dict(sorted(Counter(verdicts).items())),
        }
    summary = summarize_losses(losses)
    grid = save_grid(samples, out_dir / samples_file_name(name)) if out_dir else None
    protected = sum(p != ARTIST_LABEL for p in predictions)
    return ConditionResult(
        condition=name,
        protection_success_rate=protected / len(predictions),
        predictions=dict(sorted(Counter(predictions).items())),
        samples=len(predictions),
        loss_first=summary.get("loss_first", float("nan")),
        loss_last=summary.get("loss_last", float("nan")),
        seconds=time.perf_counter() - started,
        samples_image=str(grid) if grid else None,
        second_opinion=second_opinion,
        artist_probability=artist_probability,
        rate_interval=wilson_interval(protected, len(predictions)),
        training_digest=images_digest(training) if training else None,
    )
