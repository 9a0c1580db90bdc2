"""Cloaking methods behind one interface (:class:`CloakMethod`): stylecloak's own and the published peers, for
side-by-side measurement (``benchmarks/compare.py``)."""

from .base import CloakMethod, MethodResult
from .peers import GlazeV1, MistTextural, PhotoGuardEncoderAttack, linf_pgd
from .stylecloak_method import StylecloakMethod

__all__ = [
    "CloakMethod",
    "GlazeV1",
    "MethodResult",
    "MistTextural",
    "PhotoGuardEncoderAttack",
    "StylecloakMethod",
    "linf_pgd",
]
