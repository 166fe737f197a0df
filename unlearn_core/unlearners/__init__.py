"""Unlearners behind one interface; importing this package registers the built-in methods."""

from importlib import import_module

from unlearn_core.unlearners.base import (
    Cancelled,
    HyperParam,
    UnlearnContext,
    Unlearner,
    UnlearnResult,
    resolve_params,
)
from unlearn_core.unlearners.registry import get_unlearner, list_unlearners, methods_with, register_unlearner

# One line per built-in method module. Each module registers its class(es) with @register_unlearner.
_BUILTIN_MODULES = (
    "retrain",
    "certified_newton",
    "noisy_finetune",
    "output_perturbation",
    "cure_newton",
    "damped_newton",
    "finetune",
    "neggrad",
    "fisher",
    "descent_to_delete",
    "langevin",
    "rewind_to_delete",
)

for _module in _BUILTIN_MODULES:
    import_module(f"unlearn_core.unlearners.{_module}")

__all__ = [
    "Cancelled",
    "HyperParam",
    "UnlearnContext",
    "UnlearnResult",
    "Unlearner",
    "get_unlearner",
    "list_unlearners",
    "methods_with",
    "register_unlearner",
    "resolve_params",
]
