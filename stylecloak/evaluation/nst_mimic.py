"""Mimicry by style transfer through the model's eyes (``stylecloak mimic --attack nst``): minutes on a CPU.

A latent diffusion model learns an artist's style only from what its encoder keeps: the latents ``E(x)``. This
attack makes that explicit and cheap. It takes what the model sees of each of the artist's images, the decoder's
image of its latent, ``D(E(x))``, and transfers that style (VGG16 Gram statistics, as in Gatys et al.) onto
content images of other styles: "new works in the artist's style", as a mimic would generate them. The same
style judge as the other attacks then says whose style they show.

A cloak that moves ``E(x)`` toward another style changes ``D(E(x))``, and so what is transferred; a cloak that
does not reach the latent changes nothing here. The judge's control is the same transfer from each other
style's works (through the same encoder) onto contents of the remaining styles: how often does the judge call
a Gram transfer the artist's when it is not? Caveat: the transfer matches VGG16 Gram statistics and the
default judge classifies VGG16 Gram features, so this attack is strong on the judge's own terms; the clean
baseline is expected to be low. It is a proxy for a fine-tuned model, not one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..countermeasures import encoder_decoder_round_trip
from ..metrics import progress_toward
from ..models.encoders import LatentEncoder
from ..models.lpips import load_vgg16_features
from ..models.vgg import VGG16Features
from ..targets.transfer import reference_transfer
from .attack import (
    ARTIST_LABEL,
    MimicryReport,
    MimicryRequest,
    attack_conditions,
    check_attack_inputs,
    fit_judge_on_images,
    fit_second_judge,
    judge_condition,
    record_control,
)
from .classifier import FeatureExtractor, FeatureStyleClassifier
from .mimic import centre_square, resize_classes, resize_for_mimic
from .style_features import GramFeatureExtractor


@dataclass(frozen=True)
class NSTMimicConfig:
    samples: int = 12
    steps: int = 100
    image_size: int = 128  # long side of the style sources and of the generated images
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"attack": "nst"}


def _check_decoder(encoder: LatentEncoder) -> None:
    """This attack and its figure both read the decoder's image of the latents."""
    if not encoder.can_decode:
        raise ValueError(f"encoder {encoder.name!r} has no decoder: there is no image of what the model sees")


def style_source_progress(
    encoder: LatentEncoder,
    vgg: VGG16Features,
    original: torch.Tensor,
    cloaked: torch.Tensor,
    target: torch.Tensor,
    image_size: int = NSTMimicConfig.image_size,
) -> float:
    """How far a cloak moves what this attack copies toward the target, in seconds instead of a run: the
    ``target_progress`` of the Gram judge's style features (:class:`GramFeatureExtractor`, VGG16) of the
    decoder's image of each of the three (1x3xHxW in [0, 1]) shrunk to the attack's long side.

    The transfer copies VGG16 Gram statistics of exactly that image, so a cloak that leaves them in place
    leaves the attack nothing to copy but the artist's style. On one artist's prints posted at 256 px
    (docs/protection.md, 2026-12-05) the sets' medians ranked the designs as the transfers' verdicts did, and
    steeply: 0.19-0.21 of the way gave a quarter to a third of the transfers away from the artist, 0.24 three
    quarters; at 512 px a median of 0.234 gave 0.33 to 0.58 of them (2026-12-06). A ranking, not a rate; for a
    whole training set see :func:`pooled_style_source_progress`. Needs an encoder with a decoder.
    """
    return pooled_style_source_progress(encoder, vgg, [(original, cloaked, target)], image_size)


def pooled_style_source_progress(
    encoder: LatentEncoder,
    vgg: VGG16Features,
    works: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    image_size: int = NSTMimicConfig.image_size,
) -> float:
    """:func:`style_source_progress` of a whole training set, as this attack pools it: the ``target_progress``
    of the mean style features of the originals, the cloaks and the targets (each ``works`` item one work's
    (original, cloaked, target)).

    The transfer copies the mean Gram matrices of all the artist's works (this averages the judge's features of
    them instead, a close stand-in), so a work the cloak barely moves pulls back what is copied; a median over
    the works hides it. On the prints posted at 512 px two works of nine, smaller than the rest, moved half as
    far: the median stayed where the 256 px set's gave three quarters of the transfers away, this figure fell,
    and so did the transfers (a third to a half away). A ranking within one posted size, not a rate
    (docs/protection.md, 2026-12-06).
    """
    _check_decoder(encoder)
    if not works:
        raise ValueError("no works to pool")
    features = GramFeatureExtractor(vgg, cache=False)
    seen = [_pooled_view_features(encoder, features, [work[k] for work in works], image_size) for k in range(3)]
    return progress_toward(seen)


def pooled_style_artist_probability(
    encoder: LatentEncoder,
    judge: FeatureStyleClassifier,
    works: Sequence[torch.Tensor],
    image_size: int = NSTMimicConfig.image_size,
) -> float:
    """The judge's own reading of what this attack copies from a training set: its P(artist) for the mean
    style features of the decoder's images of ``works`` (each 1x3xHxW in [0, 1], shrunk to the attack's long
    side), ``judge`` fitted as this attack fits it (on the artist's clean works at that size, the other styles
    and, with --judge-renditions, their renditions).

    :func:`pooled_style_source_progress` measures the way toward the target; the judge asks how far from the
    artist's class, against all its other classes, which is a different direction. On the prints (2026-12-06,
    docs/protection.md) two sets of equal pooled progress, one posted at 256 px and one at 512 px, gave the
    transfer 0.50 and 0.33; this reading told them apart in that order and ranked six sets across both sizes
    about as the transfers did, by differences of a few thousandths (clean about 0.34, cloaks 0.27-0.29).
    A diagnostic of one judge, not a rate; 0 when the judge has no artist class.
    """
    _check_decoder(encoder)
    if not works:
        raise ValueError("no works to pool")
    if ARTIST_LABEL not in judge.labels:
        return 0.0
    pooled = _pooled_view_features(encoder, judge.extractor, works, image_size)
    with torch.no_grad():
        return float(judge.head.predict_proba(pooled[None])[0, judge.labels.index(ARTIST_LABEL)])


def _pooled_view_features(
    encoder: LatentEncoder, extractor: FeatureExtractor, images: Sequence[torch.Tensor], image_size: int
) -> torch.Tensor:
    """The mean of ``extractor``'s features of the decoder's images of ``images`` shrunk to ``image_size``: what
    this attack pools from a training set, as both pooled figures read it."""
    with torch.no_grad():
        return torch.stack(
            [extractor.features(encoder_decoder_round_trip(resize_for_mimic(x, image_size), encoder)) for x in images]
        ).mean(dim=0)


def run_nst_mimicry(request: MimicryRequest, encoder: LatentEncoder, config: NSTMimicConfig) -> MimicryReport:
    clean, cloaked, others, judge = request.clean, request.cloaked, request.others, request.judge
    device, out_dir, progress = request.device, request.out_dir, request.progress
    classifier_name = request.judge_name
    check_attack_inputs(clean, cloaked, others)
    _check_decoder(encoder)
    size = config.image_size
    clean = [resize_for_mimic(image, size) for image in clean]
    cloaked = [resize_for_mimic(image, size) for image in cloaked]
    other_images = resize_classes(others, size)

    # The judge's extra classes (--judge-renditions) at the transfers' size; the transfer never sees them.
    extra = resize_classes(request.judge_extra_classes, size)
    sanity = fit_judge_on_images(judge, clean, other_images, extra)
    report = MimicryReport(
        len(clean),
        {label: len(images) for label, images in other_images.items()},
        config,  # type: ignore[arg-type]
        classifier_name,
        sanity,
    )
    fit_second_judge(report, request, lambda second: fit_judge_on_images(second, clean, other_images, extra))

    # Content: the other styles' works in turn, the same for every condition.
    pool = [(label, image) for label, images in other_images.items() for image in images]
    contents = _contents(pool, config.samples, config.seed, size)
    vgg = load_vgg16_features(device)

    def transferred(
        style_images: Sequence[torch.Tensor], name: str, onto: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """``style_images``' style, as the model sees it, on each image of ``onto``."""
        with torch.no_grad():
            seen = [encoder_decoder_round_trip(image.to(device), encoder).cpu() for image in style_images]
        transfer = reference_transfer(
            vgg,
            [image.to(device) for image in seen],
            label=name,
            steps=config.steps,
            work_long_side=size,
            refine_steps=0,
        )
        samples = []
        for number, content in enumerate(onto):
            samples.append(transfer.render(content.to(device)).cpu())
            if progress is not None:
                progress(name, "style transfer", number + 1, len(onto))
        return samples

    conditions = attack_conditions(
        request, clean, cloaked, encoder, lambda images: [resize_for_mimic(image, size) for image in images]
    )
    for name, artist_images in conditions:
        started = time.perf_counter()
        samples = transferred(artist_images, name, contents)
        report.conditions.append(
            judge_condition(name, samples, judge, [], started, out_dir, request.second_judge, artist_images)
        )

    # The control: as many transfers in all as the artist got, each other style onto the other styles' works.
    per_style = max(1, -(-config.samples // len(other_images)))
    control = {}
    for label, images in other_images.items():
        foreign = [(other, image) for other, image in pool if other != label]
        if foreign:  # with a single other style, there is no other work to paint on
            control[label] = transferred(images, f"control {label}", _contents(foreign, per_style, config.seed, size))
    record_control(report, control, judge, out_dir, request.second_judge)
    return report


def _contents(pool: Sequence[tuple[str, torch.Tensor]], count: int, seed: int, size: int) -> list[torch.Tensor]:
    """``count`` contents from ``pool`` in turn (a fixed order, so every run gets the same), as squares of one
    size, like a model's samples; none from an empty pool."""
    return [centre_square(pool[(seed + k) % len(pool)][1], size) for k in range(count)] if pool else []
