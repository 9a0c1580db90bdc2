"""stylecloak: style cloaking for artwork (the Glaze method).

    import stylecloak
    cloaked, report = stylecloak.cloak("painting.png", intensity="medium", quality="default", target="mosaic")

The public names below are imported lazily, so that ``stylecloak --help`` does not wait for PyTorch to load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

_PUBLIC = {
    "cloak": "stylecloak.pipeline",
    "Cloaker": "stylecloak.pipeline",
    "CloakReport": "stylecloak.pipeline",
    "CloakSettings": "stylecloak.settings",
    "INTENSITY_BUDGETS": "stylecloak.settings",
    "QUALITY_PRESETS": "stylecloak.settings",
    "load_encoder": "stylecloak.models.encoders",
    "load_lpips": "stylecloak.models.lpips",
    "get_target": "stylecloak.targets",
    "available_targets": "stylecloak.targets",
    "load_image": "stylecloak.imaging",
    "save_image": "stylecloak.imaging",
    "lpips_distance": "stylecloak.metrics",
    "target_progress": "stylecloak.metrics",
}

__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:
    from .imaging import load_image, save_image
    from .metrics import lpips_distance, target_progress
    from .models.encoders import load_encoder
    from .models.lpips import load_lpips
    from .pipeline import Cloaker, CloakReport, cloak
    from .settings import INTENSITY_BUDGETS, QUALITY_PRESETS, CloakSettings
    from .targets import available_targets, get_target


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'stylecloak' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
