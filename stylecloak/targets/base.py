"""The target-style interface and the registry of renditions.

A *target style* turns an artwork into the same scene rendered in a very different style; the cloak then pulls
the encoder's view of the artwork towards that rendition. Every target is a small immutable object with a
``name``, a one-line ``description`` and a ``render`` method.

The registry is a plain ``dict`` built explicitly: :func:`default_registry` returns a fresh one holding the
built-in renditions, :func:`register_target` adds a target to a registry the caller owns, and
:func:`get_target` / :func:`available_targets` read the module-level, read-only mapping of the built-ins (or a
registry passed to them). There is no global mutable state.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import torch

from stylecloak.targets.renditions import BUILTIN_RENDITIONS

__all__ = [
    "BUILTIN_TARGETS",
    "TargetStyle",
    "UnknownTargetError",
    "available_targets",
    "default_registry",
    "get_target",
    "register_target",
]


@runtime_checkable
class TargetStyle(Protocol):
    """A style to render an artwork in, computed from the artwork itself.

    ``render`` takes a ``1x3xHxW`` float32 image in ``[0, 1]`` and returns a tensor of the same shape and dtype,
    in ``[0, 1]``, showing the same scene (same layout) in this style. The output is a pure function of the
    input and ``seed``: two calls with the same arguments give bitwise-identical results.
    """

    name: str
    description: str

    def render(self, image: torch.Tensor, seed: int = 0) -> torch.Tensor: ...


class UnknownTargetError(KeyError):
    """Raised when a target name is not in the registry; the message lists the known names."""

    def __init__(self, name: str, known: list[str] | tuple[str, ...]) -> None:
        super().__init__(name)
        self.name = name
        self.known = tuple(known)

    def __str__(self) -> str:
        known = ", ".join(self.known) if self.known else "(none)"
        return f"unknown target style {self.name!r}; known target styles: {known}"


def register_target(target: TargetStyle, registry: MutableMapping[str, TargetStyle]) -> None:
    """Add ``target`` to ``registry`` under ``target.name``.

    Raises ``TypeError`` if ``target`` does not implement :class:`TargetStyle` and ``ValueError`` if its name is
    empty or already taken in ``registry``.
    """
    if not isinstance(target, TargetStyle):
        raise TypeError(f"{target!r} does not implement TargetStyle (needs name, description and render)")
    name = target.name
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"target {target!r} has an empty name")
    if name in registry:
        raise ValueError(f"a target named {name!r} is already registered")
    registry[name] = target


def default_registry() -> dict[str, TargetStyle]:
    """A fresh, caller-owned registry holding the built-in renditions, in catalogue order."""
    registry: dict[str, TargetStyle] = {}
    for target in BUILTIN_RENDITIONS:
        register_target(target, registry)
    return registry


#: The built-in renditions by name (read-only).
BUILTIN_TARGETS: Mapping[str, TargetStyle] = MappingProxyType(default_registry())


def available_targets(registry: Mapping[str, TargetStyle] | None = None) -> list[TargetStyle]:
    """The targets in ``registry`` (default: the built-ins), in registration order."""
    return list((BUILTIN_TARGETS if registry is None else registry).values())


def get_target(name: str, registry: Mapping[str, TargetStyle] | None = None) -> TargetStyle:
    """The target called ``name`` in ``registry`` (default: the built-ins); :class:`UnknownTargetError` if none."""
    table = BUILTIN_TARGETS if registry is None else registry
    try:
        return table[name]
    except (KeyError, TypeError):
        raise UnknownTargetError(name, list(table)) from None
