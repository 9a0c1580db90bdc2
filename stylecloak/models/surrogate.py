"""A surrogate latent diffusion model for a denoiser-aware cloak term (experimental, off by default).

The encoder attack moves what the encoder sees; a mimic then trains a diffusion model on those latents, and a
small diffusion model learns some latent features readily and averages others away. Protections such as Mist
(Liang et al. 2023) and the score-distillation attacks (Xue et al., ICLR 2024) therefore add a term through a
diffusion model's denoiser. This module gives the cloak such a denoiser without any downloaded weights: a small
class-conditioned latent diffusion model (the architecture of :mod:`stylecloak.evaluation.mimic`) that the cloak
side trains itself on *other* art, never the artist's works, and never the evaluator's own mimic or judge.

Two terms, on the latents of each shrunk view the optimiser sees (:class:`DenoiserTerm`):

- ``toward-target``: score distillation toward the target style's class. Each step noises the view's latents
  to a random level, asks the surrogate (with classifier-free guidance) what clean latent of the *target
  style* it sees in them, and pulls the latents toward that estimate (the denoiser's Jacobian is skipped, as
  score distillation does). What a diffusion model takes to be that style, not only the encoder's distance.
- ``away``: the AdvDM/Mist "semantic" term: raise the surrogate's denoising loss on the view (unconditioned),
  so that a model fine-tuned on the cloak must spend itself on patterns it finds hard to predict.
- ``both``: the two together, each normalised on its own and each with the weight (:class:`CombinedTerm`).

Which one moves a mimic depends on the artist in our runs (docs/protection.md): ``away`` on the ukiyo-e prints,
``toward-target`` (toward pop-art) on the renaissance works, neither on both; so the mode is a setting
(``CloakSettings.surrogate_mode``), and :func:`denoiser_for` builds the term for one target.

Each term is normalised by its mean size over noise levels on the first latents it sees in a view (the
original's, at the first step), so that ``weight`` 1 weighs it like that view's target distance (which starts
at 1).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..evaluation.mimic import (
    LatentSet,
    MimicConfig,
    TrainedMimic,
    _scheduler_config,
    _unet,
    encode_images,
    fine_tune_on_artist,
    latent_stats,
    resize_for_mimic,
    train_base_model,
    train_mimic,
)
from ..imaging import atomic_write_bytes
from ..settings import SURROGATE_GUIDANCE, SURROGATE_LEVELS, SURROGATE_MODES
from .encoders import LatentEncoder

DENOISER_MODES = ("toward-target", "away")
# The seed of the surrogate's training (the evaluator's mimic uses MimicConfig's 0: another start and other
# batches make it another model even where the architecture is the same).
SURROGATE_SEED = 1


def train_surrogate(
    classes: Mapping[str, Sequence[torch.Tensor]],
    encoder: LatentEncoder,
    device: torch.device,
    config: MimicConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> TrainedMimic:
    """A class-conditioned latent diffusion model trained on ``classes`` (label -> 1x3xHxW images in [0, 1]),
    shrunk to ``config.image_size`` as a mimic takes them, for ``config.base_steps`` steps."""
    config = config or MimicConfig(seed=SURROGATE_SEED)
    if not classes:
        raise ValueError("the surrogate needs at least one class of images")
    sets = [
        LatentSet(label, encode_images(encoder, [resize_for_mimic(x, config.image_size) for x in images], device))
        for label, images in classes.items()
    ]
    mean, std = latent_stats([z for s in sets for z in s.latents])
    return train_mimic(sets, config, mean, std, device, progress=progress, steps=config.base_steps)


ARTIST_CLASS = "artist"


def train_artist_surrogate(
    classes: Mapping[str, Sequence[torch.Tensor]],
    artist_images: Sequence[torch.Tensor],
    encoder: LatentEncoder,
    device: torch.device,
    config: MimicConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> TrainedMimic:
    """A surrogate that knows the artist as a mimic does: the mimic's own recipe on the cloak side. A base model
    learns ``classes`` for ``config.base_steps`` with an empty class :data:`ARTIST_CLASS`, then a copy is
    fine-tuned for ``config.steps`` on the artist's own (clean) works ``artist_images`` beside the classes, with
    ``config.artist_share`` of each batch from the artist: the class is learned as the mimic learns it, which
    is what a term guided from it (``DenoiserTerm.negative_label``) is meant to steer away from. The latent scale
    comes from ``classes`` alone, as the mimic's does."""
    config = config or MimicConfig(seed=SURROGATE_SEED)
    if not classes or not artist_images:
        raise ValueError("the artist's surrogate needs other classes and at least one of the artist's works")
    if ARTIST_CLASS in classes:
        raise ValueError(f"{ARTIST_CLASS!r} is the artist's own class; the other classes need other names")

    def shrunk(images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return encode_images(encoder, [resize_for_mimic(x, config.image_size) for x in images], device)

    others = [LatentSet(label, shrunk(images)) for label, images in classes.items()]
    mean, std = latent_stats([z for s in others for z in s.latents])
    base = train_base_model(ARTIST_CLASS, others, config, mean, std, device, progress)
    return fine_tune_on_artist(base, ARTIST_CLASS, shrunk(artist_images), others, config, mean, std, device, progress)


# The procedural corpus of :func:`synthetic_surrogate_classes`: how many images, their size, and the seed of the
# renditions (the judges render with 0, the art-trained surrogates of bench_surrogate.py with 1).
SYNTHETIC_IMAGES = 48
SYNTHETIC_LONG_SIDE = 256
SYNTHETIC_RENDER_SEED = 1


def synthetic_surrogate_classes(count: int = SYNTHETIC_IMAGES, seed: int = 0) -> dict[str, list[torch.Tensor]]:
    """A training corpus without any art: ``count`` procedural images (:mod:`.synthetic_art`) as class ``art``,
    and each of them rendered in every catalogue style, one class ``rendition:NAME`` per style."""
    from ..evaluation.attack import rendition_classes
    from ..targets import available_targets
    from .synthetic_art import synthetic_paintings

    images = synthetic_paintings(count, SYNTHETIC_LONG_SIDE, seed)
    renditions = rendition_classes({"synthetic": images}, available_targets(), seed=SYNTHETIC_RENDER_SEED)
    return {"art": images} | renditions


def train_synthetic_surrogate(
    encoder: LatentEncoder,
    device: torch.device,
    count: int = SYNTHETIC_IMAGES,
    seed: int = SURROGATE_SEED,
    progress: Callable[[str, int, int], None] | None = None,
) -> TrainedMimic:
    """The surrogate of ``stylecloak surrogate``: trained on :func:`synthetic_surrogate_classes` (no art at all),
    with the quick mimic's architecture and steps; ``seed`` draws the images and the training."""
    classes = synthetic_surrogate_classes(count, seed)
    return train_surrogate(classes, encoder, device, MimicConfig(seed=seed), progress)


def save_surrogate(model: TrainedMimic, path: Path) -> None:
    """Write ``model`` to ``path`` atomically: an interrupted save leaves no half-written file."""
    state = {
        "unet": model.unet.state_dict(),
        "labels": model.labels,
        "mean": model.mean,
        "std": model.std,
        "config": model.config.to_dict(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_surrogate(path: Path, device: torch.device) -> TrainedMimic:
    state = torch.load(path, map_location="cpu", weights_only=True)
    config = MimicConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()}  # JSON-ish lists
    )
    unet = _unet(config, state["mean"].shape[1], len(state["labels"]))
    unet.load_state_dict(state["unet"])
    unet.to(device).eval().requires_grad_(False)
    return TrainedMimic(unet, list(state["labels"]), state["mean"], state["std"], config)


def load_surrogate_file(path: str | Path, device: torch.device) -> TrainedMimic:
    """:func:`load_surrogate` for a path a user gave (``~`` expanded), raising ValueError with a one-line reason
    when the file is missing or is not a surrogate model."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"surrogate model not found: {path}")
    try:
        return load_surrogate(path, device)
    except (KeyError, RuntimeError, OSError, pickle.UnpicklingError) as error:
        raise ValueError(
            f"{path} is not a surrogate model from `stylecloak surrogate` ({type(error).__name__})"
        ) from None


def check_latent_channels(model: TrainedMimic, latents: torch.Tensor, encoder_name: str | None = None) -> None:
    """Raise ValueError in one line when ``latents`` are not of the latent space ``model`` was trained on (a
    surrogate of TAEF2's 32 channels given an encoder of 4), instead of a tensor error deep in the term."""
    channels = int(model.mean.shape[1])
    if latents.shape[1] != channels:
        encoder = "the encoder" if encoder_name is None else f"encoder {encoder_name!r}"
        raise ValueError(
            f"the surrogate was trained on latents of {channels} channels and {encoder} gives "
            f"{latents.shape[1]}: use the encoder the surrogate was trained with"
        )


@dataclass
class DenoiserTerm:
    """A surrogate's term in each shrunk view's loss (see the module docstring)."""

    model: TrainedMimic
    mode: str = "toward-target"
    label: str | None = None  # the class pulled toward ("toward-target")
    weight: float = 1.0
    guidance: float = SURROGATE_GUIDANCE  # "toward-target" only
    # Noise levels drawn (of the 1000 training steps): see stylecloak.settings.SURROGATE_LEVELS.
    timestep_range: tuple[int, int] = SURROGATE_LEVELS
    seed: int = 0
    # "toward-target" only: the class guidance steers away from, in place of the unconditioned prediction (None).
    # Given the artist's own class (a surrogate that learned the artist's works), the estimate moves from what the
    # surrogate takes for the artist's style toward the target's, as a negative prompt does in classifier-free
    # guidance, instead of from "any art": an objective on what sets the artist apart. With ``label`` None the pull
    # is toward the unconditioned prediction, away from this class alone.
    negative_label: str | None = None
    _generator: torch.Generator = field(init=False, repr=False)
    _scales: dict[tuple[int, ...], float] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in DENOISER_MODES:
            raise ValueError(f"denoiser mode must be one of {', '.join(DENOISER_MODES)}, got {self.mode!r}")
        # With a negative class, no label pulls toward the unconditioned prediction: away from that class alone.
        any_art = self.label is None and self.negative_label is not None
        if self.mode == "toward-target" and self.label not in self.model.labels and not any_art:
            raise ValueError(f"the surrogate has no class {self.label!r}; it has {', '.join(self.model.labels)}")
        if self.negative_label is not None and (
            self.mode != "toward-target" or self.negative_label not in self.model.labels
        ):
            raise ValueError(
                f"a negative class goes with mode 'toward-target' and a class of the surrogate "
                f"({', '.join(self.model.labels)}), got {self.mode!r} and {self.negative_label!r}"
            )
        if self.weight < 0:
            raise ValueError(f"the denoiser term's weight must be >= 0, got {self.weight}")
        from diffusers import DDPMScheduler

        self._scheduler = DDPMScheduler(**_scheduler_config())  # the noising the mimic trains with
        self._generator = torch.Generator().manual_seed(self.seed)

    def reset(self) -> None:
        """Start the random draws again (each image is cloaked from the same stream)."""
        self._generator = torch.Generator().manual_seed(self.seed)
        self._scales.clear()

    def loss(self, latents: torch.Tensor, scale_key: tuple[int, ...]) -> torch.Tensor:
        """The weighted, normalised term for 1xCxhxw ``latents`` (differentiable in them). ``scale_key`` names
        the view: its first call measures the raw term's mean size there, which normalises every later one."""
        if scale_key not in self._scales:
            # The mean over noise levels spread evenly across the range (one level can change the value tenfold,
            # so random ones would leave the weight's meaning to chance), with noise from a stream of its own so
            # that the measuring leaves the optimisation's draws as they were.
            self._scales[scale_key] = max(abs(self.mean_over_levels(latents)), 1e-8)
        return self.weight * self._raw(latents, self._generator) / self._scales[scale_key]

    def mean_over_levels(self, latents: torch.Tensor, levels: int = 32, seed: int | None = None) -> float:
        """The unweighted, unnormalised term on ``latents``, averaged over ``levels`` noise levels spread evenly
        across ``timestep_range``, without gradient; its noise comes from a generator of its own (``seed``,
        default derived from the term's), so that measuring leaves the optimisation's draws as they were. For
        ``away`` it is minus the surrogate's denoising loss."""
        generator = torch.Generator().manual_seed(self.seed + 7919 if seed is None else seed)
        low, high = self.timestep_range
        steps = [round(low + (high - low) * (k + 0.5) / levels) for k in range(levels)]
        with torch.no_grad():
            return sum(float(self._raw(latents.detach(), generator, t)) for t in steps) / levels

    def _raw(self, latents: torch.Tensor, generator: torch.Generator, level: int | None = None) -> torch.Tensor:
        """The unnormalised term at noise level ``level`` (default: drawn from ``generator``)."""
        model = self.model
        check_latent_channels(model, latents)  # the cloak's views and the figure's latents alike
        device = latents.device
        z = (latents.float() - model.mean.to(device)) / model.std.to(device)
        height, width = z.shape[-2:]
        # The UNet halves the map at each level but the last: pad (by edge values) to a size it can halve.
        multiple = 2 ** (len(model.config.channels) - 1)
        padded = torch.nn.functional.pad(z, (0, -width % multiple, 0, -height % multiple), mode="replicate")
        low, high = self.timestep_range
        t = int(torch.randint(low, high, (1,), generator=generator)) if level is None else level
        noise = torch.randn(padded.shape, generator=generator).to(device)
        timestep = torch.tensor([t], device=device)
        null = torch.full((len(z),), len(model.labels), device=device)
        if self.negative_label is not None:  # guidance from this class instead of from the unconditioned one
            null = torch.full((len(z),), model.labels.index(self.negative_label), device=device)
        noisy = self._scheduler.add_noise(padded, noise, timestep)
        if self.mode == "away":
            velocity = self._scheduler.get_velocity(padded, noise, timestep)
            predicted = model.unet(noisy, timestep, class_labels=null).sample
            return -(predicted - velocity)[..., :height, :width].pow(2).sum()
        a = self._scheduler.alphas_cumprod[t].to(device)
        noisy = noisy.detach()
        with torch.no_grad():
            wanted_index = len(model.labels) if self.label is None else model.labels.index(self.label)
            wanted = torch.full((len(z),), wanted_index, device=device)
            both = model.unet(torch.cat([noisy, noisy]), timestep.repeat(2), class_labels=torch.cat([wanted, null]))
            conditional, free = both.sample.chunk(2)
            velocity = free + self.guidance * (conditional - free)
            estimate = a.sqrt() * noisy - (1 - a).sqrt() * velocity  # the clean latent it sees, in that style
        return (z - estimate[..., :height, :width]).pow(2).sum()


@dataclass
class CombinedTerm:
    """Several terms summed, each normalised on its own and weighted by its own weight: to the optimiser one
    denoiser (``weight``, ``loss``, ``reset``)."""

    terms: tuple[DenoiserTerm, ...]

    @property
    def weight(self) -> float:
        return sum(term.weight for term in self.terms)

    def loss(self, latents: torch.Tensor, scale_key: tuple[int, ...]) -> torch.Tensor:
        return sum((term.loss(latents, scale_key) for term in self.terms), torch.zeros((), device=latents.device))

    def reset(self) -> None:
        for term in self.terms:
            term.reset()


def denoiser_for(
    model: TrainedMimic,
    mode: str,
    target_name: str | None,
    weight: float = 1.0,
    seed: int = 0,
    guidance: float = SURROGATE_GUIDANCE,
    levels: tuple[int, int] = SURROGATE_LEVELS,
) -> DenoiserTerm | CombinedTerm:
    """The term of ``mode`` (one of :data:`SURROGATE_MODES`) through ``model`` for a cloak toward the catalogue
    target ``target_name``, each term drawing its noise levels from ``levels`` (LOW, HIGH), the toward-target
    term guided at ``guidance``. ``toward-target`` and ``both`` need the surrogate to have learned that target's
    renditions (``stylecloak surrogate`` learns every catalogue style's); raises ValueError with a one-line
    reason when it has not, or when the target is not a catalogue style (``target_name`` None)."""
    if mode not in SURROGATE_MODES:
        raise ValueError(f"surrogate mode must be one of {', '.join(SURROGATE_MODES)}, got {mode!r}")
    levels = (int(levels[0]), int(levels[1]))
    if mode == "away":
        return DenoiserTerm(model, "away", weight=weight, timestep_range=levels, seed=seed)
    from ..evaluation.attack import rendition_label

    label = None if target_name is None else rendition_label(target_name)
    if label not in model.labels:
        known = sorted(name.split(":", 1)[1] for name in model.labels if ":" in name)
        raise ValueError(
            f"surrogate mode {mode!r} pulls toward the target's class, and the surrogate has none for "
            f"{target_name or 'this target'!r}; it knows: {', '.join(known) or 'no target styles'}"
        )
    toward = DenoiserTerm(model, "toward-target", label, weight, guidance, levels, seed=seed)
    if mode == "toward-target":
        return toward
    return CombinedTerm((DenoiserTerm(model, "away", label, weight, timestep_range=levels, seed=seed), toward))


def ensemble_denoiser(
    models: Sequence[TrainedMimic],
    mode: str,
    target_name: str | None,
    weight: float = 1.0,
    seed: int = 0,
    guidance: float = SURROGATE_GUIDANCE,
    levels: tuple[int, int] = SURROGATE_LEVELS,
) -> DenoiserTerm | CombinedTerm:
    """The term of ``mode`` through each of ``models`` (surrogates trained apart), summed: an ensemble, as
    transfer attacks use so that the perturbation follows what the models share rather than one model's
    quirks. The total ``weight`` is split evenly, so an ensemble weighs in the loss as one surrogate would;
    each model draws its noise from a seed of its own (``seed`` + its index). One model gives
    :func:`denoiser_for`'s term itself. Raises ValueError as :func:`denoiser_for` does, and for no models."""
    if not models:
        raise ValueError("an ensemble of surrogates needs at least one model")
    share = weight / len(models)
    terms: list[DenoiserTerm] = []
    for index, model in enumerate(models):
        term = denoiser_for(model, mode, target_name, share, seed + index, guidance, levels)
        terms.extend(term.terms if isinstance(term, CombinedTerm) else (term,))
    return terms[0] if len(terms) == 1 else CombinedTerm(tuple(terms))
