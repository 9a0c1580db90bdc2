"""Load an encoder by its spec: ``NAME``, ``NAME:PATH``, or an ensemble ``NAME[:PATH][@W]+...``
(:mod:`stylecloak.models.spec`), from the one table of known models (:mod:`stylecloak.models.registry`).

The optimiser only knows :class:`~stylecloak.models.base.LatentEncoder` (an image in, latents out,
differentiably; re-exported here).
"""

from __future__ import annotations

import torch

from .base import LatentEncoder, pad_to_multiple
from .registry import DEFAULT_ENCODER, KNOWN_MODELS
from .spec import ModelSpec, parse_model_spec

__all__ = [
    "DEFAULT_ENCODER",
    "LatentEncoder",
    "UnknownEncoderError",
    "load_encoder",
    "parse_encoder_spec",
    "pad_to_multiple",
]


class UnknownEncoderError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want a plain sentence
        return str(self.args[0])


def parse_encoder_spec(spec: str) -> tuple[str, str | None]:
    """``"taesd:/models/taesd"`` -> ``("taesd", "/models/taesd")``; one member, weight ignored (see models.spec)."""
    (member,) = parse_model_spec(spec)[:1] or [ModelSpec("")]
    return member.name, member.path


def load_encoder(spec: str = DEFAULT_ENCODER, device: str | torch.device = "cpu") -> LatentEncoder:
    """Load an encoder by spec, frozen and in eval mode: ``NAME``, ``NAME:PATH``, or an ensemble of them joined
    by ``+``, each with an optional ``@WEIGHT`` (``sd-vae:/models/vae@0.5+taef2``)."""
    members = parse_model_spec(spec)
    if len(members) > 1:
        from .ensemble import EnsembleEncoder

        return EnsembleEncoder([load_encoder(m.text, device) for m in members], [m.weight for m in members]).to(device)
    name, path = parse_encoder_spec(spec)
    model = KNOWN_MODELS.get(name)
    if model is None:
        known = ", ".join(sorted(KNOWN_MODELS))
        raise UnknownEncoderError(f"unknown encoder {name!r}; known encoders: {known}")
    return model.load(path).to(device)
