"""Turn what a user asked for as a target into the style the cloak moves toward: one function for the command
line, the web app, the batch path and the Python API.

A request is one of
- a catalogue name (``ink-hatching``): used as it is;
- ``auto``: the portfolio's pinned target if there is one, otherwise one chosen for all the inputs at once
  (:func:`stylecloak.targets.choice.choose_target`) and pinned, so that every image of a portfolio, and a later
  run of it, moves toward the same wrong style;
- reference images (a folder): neural style transfer toward them;
- ``sd:PROMPT`` with a local Stable Diffusion folder: img2img toward the prompt.

Resolution loads what the choice needs (VGG16 for the Gram descriptor, the encoder for the latent one, CLIP) and
never prints: what happened comes back as :attr:`ResolvedTarget.notes`, for the caller to show.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..descriptors import GramDescriptor, LatentStatsDescriptor, StyleDescriptor
from ..errors import first_line
from ..imaging import ImageInputError
from .base import TargetStyle, get_target
from .choice import TargetChoice, choose_target, load_portfolio, read_pin, write_pin

AUTO = "auto"
SD_PREFIX = "sd:"
DESCRIPTORS_HELP = "gram (VGG16 Gram statistics), latent (the encoder's latent statistics), or clip:PATH"


class TargetResolutionError(ValueError):
    """The request cannot give a target (bad name, unreadable references, a missing model); one line."""


@dataclass(frozen=True)
class TargetRequest:
    """What was asked for. ``target`` is a catalogue name, ``auto`` or ``sd:PROMPT``; ``reference_images`` (a
    folder) takes precedence over ``target`` when given."""

    target: str = AUTO
    reference_images: str | os.PathLike[str] | None = None
    sd_model: str | os.PathLike[str] | None = None  # a local Stable Diffusion folder (diffusers format)
    sd_strength: float | None = None
    descriptor: str = "gram"  # how ``auto`` compares styles: see DESCRIPTORS_HELP

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TargetRequest:
        """From the cloak options (``stylecloak.options.CLOAK_OPTIONS``, by their argparse names)."""
        return cls(
            options.get("target") or AUTO,
            options.get("target_images"),
            options.get("target_model"),
            options.get("target_strength"),
            options.get("descriptor", "gram"),
        )


@dataclass
class ResolvedTarget:
    """The target to cloak toward: ``name`` for the settings and reports, and ``style`` when it is not a catalogue
    entry (reference images, Stable Diffusion) and must be handed to the :class:`~stylecloak.pipeline.Cloaker`."""

    name: str
    style: TargetStyle | None = None
    choice: TargetChoice | None = None  # when ``auto`` chose just now
    pin: Path | None = None  # where the choice is (or was found) pinned
    notes: list[str] = field(default_factory=list)  # one line each, for the user: what was chosen, warnings


def make_descriptor(
    spec: str, device: torch.device, encoder_spec: str = "taef2", vgg: torch.nn.Module | None = None
) -> StyleDescriptor:
    """The style descriptor named by ``spec`` (see DESCRIPTORS_HELP). ``vgg``: VGG16 features already loaded."""
    from ..models.weights import ChecksumMismatchError, ModelNotFoundError

    try:
        if spec == "latent":
            from ..models.encoders import load_encoder

            return LatentStatsDescriptor(load_encoder(encoder_spec, device))
        if spec.startswith("clip:"):
            # CLIP lives with the evaluation toolkit (the ``eval`` extra); imported only when asked for.
            from ..evaluation.clip import clip_descriptor

            return clip_descriptor(spec[len("clip:") :], device)
        if spec != "gram":
            raise TargetResolutionError(f"unknown style descriptor {spec!r}: use {DESCRIPTORS_HELP}")
        if vgg is None:
            from ..models.lpips import load_vgg16_features

            vgg = load_vgg16_features(device)
        return GramDescriptor(vgg)  # type: ignore[arg-type]
    except (ModelNotFoundError, ChecksumMismatchError, KeyError, RuntimeError) as exc:
        raise TargetResolutionError(first_line(exc)) from exc


def choose_for_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    descriptor_spec: str = "gram",
    device_name: str = "auto",
    encoder_spec: str = "taef2",
    seed: int = 0,
) -> TargetChoice:
    """`targets choose`: the target that ``--target auto`` would choose for these files and folders' images
    (unreadable ones left out). Raises TargetResolutionError when there are none, none can be read, or the
    descriptor cannot load."""
    from ..devices import resolve_device
    from ..imaging import expand_inputs

    paths = list(expand_inputs(inputs))
    if not paths:
        raise TargetResolutionError("no images found in the given folders")
    images = load_portfolio(paths)
    if not images:
        raise TargetResolutionError("none of the inputs could be read, so no target can be chosen")
    try:
        device = resolve_device(device_name)
    except RuntimeError as exc:
        raise TargetResolutionError(first_line(exc)) from exc
    descriptor = make_descriptor(descriptor_spec, device, encoder_spec)
    return choose_target([image.to(device) for image in images], descriptor, seed=seed)


def resolve_target(
    request: TargetRequest,
    inputs: Sequence[str | os.PathLike[str]],
    device: torch.device,
    *,
    pin_folder: str | os.PathLike[str] | None = None,
    encoder_spec: str = "taef2",
    seed: int = 0,
    fallback: str = "ink-hatching",
    version: str = "",
    vgg: torch.nn.Module | None = None,
) -> ResolvedTarget:
    """The target for cloaking ``inputs``.

    ``pin_folder``: where ``auto`` reads and writes its pin (None: choose every time, pin nothing; the web app
    keeps the choice with its job instead). ``fallback``: the target when ``auto`` has no readable input to
    choose from (each input then fails with its own reason). Raises :class:`TargetResolutionError`.
    """
    if request.reference_images:
        return _reference_target(request.reference_images, device, vgg)
    if request.target.startswith(SD_PREFIX):
        return _sd_target(request, device)
    if request.target != AUTO:
        try:
            get_target(request.target)
        except KeyError as exc:
            raise TargetResolutionError(first_line(exc)) from None
        return ResolvedTarget(request.target)
    return _auto_target(request, inputs, device, pin_folder, encoder_spec, seed, fallback, version, vgg)


def _auto_target(
    request: TargetRequest,
    inputs: Sequence[str | os.PathLike[str]],
    device: torch.device,
    pin_folder: str | os.PathLike[str] | None,
    encoder_spec: str,
    seed: int,
    fallback: str,
    version: str,
    vgg: torch.nn.Module | None,
) -> ResolvedTarget:
    from ..outputs import OutputError, check_writable_folder

    folder = Path(pin_folder) if pin_folder is not None else None
    if folder is not None:
        try:
            pinned = read_pin(folder)
        except ValueError as exc:
            raise TargetResolutionError(str(exc)) from None
        if pinned is not None:
            try:
                get_target(pinned)
            except KeyError as exc:  # a pin written by another version, naming a style this one lacks
                raise TargetResolutionError(f"{folder / '.stylecloak.json'}: {first_line(exc)}") from None
            return ResolvedTarget(
                pinned, pin=folder, notes=[f"target {pinned} (pinned in {folder / '.stylecloak.json'})"]
            )
    images = load_portfolio(inputs)
    if not images:
        return ResolvedTarget(fallback)  # nothing readable: no choice is made and nothing is pinned
    descriptor = make_descriptor(request.descriptor, device, encoder_spec, vgg)
    choice = choose_target([image.to(device) for image in images], descriptor, seed=seed)
    if folder is None:
        return ResolvedTarget(
            choice.target, choice=choice, notes=[f"target {choice.target} chosen for {choice.images} image(s)"]
        )
    try:
        pin = write_pin(check_writable_folder(folder, "folder of the target's pin"), choice, version)
    except (OutputError, OSError) as exc:
        message = str(exc) if isinstance(exc, OutputError) else f"{folder}: {exc.strerror or exc}"
        return ResolvedTarget(
            choice.target,
            choice=choice,
            notes=[
                f"warning: {message}; target {choice.target} chosen for {choice.images} image(s) but not pinned, so a "
                "later run may choose again"
            ],
        )
    return ResolvedTarget(
        choice.target,
        choice=choice,
        pin=pin.parent,
        notes=[f"target {choice.target} chosen for {choice.images} image(s), pinned in {pin}"],
    )


def _reference_target(
    folder: str | os.PathLike[str], device: torch.device, vgg: torch.nn.Module | None
) -> ResolvedTarget:
    from ..targets.transfer import load_reference_images, reference_transfer

    try:
        references = load_reference_images(folder)
        if vgg is None:
            from ..models.lpips import load_vgg16_features

            vgg = load_vgg16_features(device)
        style = reference_transfer(vgg, [r.to(device) for r in references], label=Path(folder).name)  # type: ignore[arg-type]
    except (ImageInputError, OSError, ValueError, RuntimeError) as exc:
        raise TargetResolutionError(first_line(exc)) from None
    return ResolvedTarget(style.name, style=style)


def _sd_target(request: TargetRequest, device: torch.device) -> ResolvedTarget:
    from .sd import DEFAULT_STRENGTH, SDImg2ImgTarget, load_img2img_pipeline

    if not request.sd_model:
        raise TargetResolutionError(
            "--target sd:PROMPT needs --target-model PATH, a local Stable Diffusion folder in diffusers format"
        )
    try:
        pipeline = load_img2img_pipeline(request.sd_model, device)
        strength = request.sd_strength if request.sd_strength is not None else DEFAULT_STRENGTH
        style = SDImg2ImgTarget(pipeline, request.target[len(SD_PREFIX) :], strength=strength)
    except (RuntimeError, ValueError) as exc:
        raise TargetResolutionError(first_line(exc)) from None
    return ResolvedTarget(style.name, style=style)
