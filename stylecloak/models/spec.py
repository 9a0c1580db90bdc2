"""The one parser of model specs: ``NAME``, ``NAME:PATH``, and ensembles ``NAME[:PATH][@WEIGHT]+...``.

``--encoder``, ``stylecloak models fetch`` and the ensemble all read specs through :func:`parse_model_spec`, so
that a spec means the same everywhere (as timm's one name parser serves every model).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """One member of a spec: a model ``name`` (lower case), an optional local ``path``, and its ensemble ``weight``."""

    name: str
    path: str | None = None
    weight: float = 1.0

    @property
    def text(self) -> str:
        """The member without its weight, as ``load_encoder`` takes it."""
        return f"{self.name}:{self.path}" if self.path else self.name


def parse_model_spec(spec: str) -> list[ModelSpec]:
    """``"sd-vae:/m/vae@0.5+taef2"`` -> ``[ModelSpec("sd-vae", "/m/vae", 0.5), ModelSpec("taef2")]``.

    An ``@`` followed by something that is not a number is part of a path (``/m/a@b``). Empty members are skipped.
    """
    return [_parse_member(part.strip()) for part in spec.split("+") if part.strip()]


def _parse_member(member: str) -> ModelSpec:
    weight = 1.0
    head, sep, tail = member.rpartition("@")
    if sep:
        try:
            weight = float(tail)
            member = head
        except ValueError:
            pass  # an @ that is part of a path
    name, colon, path = member.partition(":")
    return ModelSpec(name.strip().lower(), path if colon and path else None, weight)
