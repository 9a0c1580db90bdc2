"""Target styles: the artwork's own content rendered in a very different style (no model weights needed)."""

from stylecloak.targets.base import (
    BUILTIN_TARGETS,
    TargetStyle,
    UnknownTargetError,
    available_targets,
    default_registry,
    get_target,
    register_target,
)

__all__ = [
    "BUILTIN_TARGETS",
    "TargetStyle",
    "UnknownTargetError",
    "available_targets",
    "default_registry",
    "get_target",
    "register_target",
]
