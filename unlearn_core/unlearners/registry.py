"""Name → unlearner registry (Opacus-style).

Methods register themselves with :func:`register_unlearner`; :func:`get_unlearner` is the one lookup used by
the CLI, the experiments and the dashboard, so an unknown name fails the same way everywhere.
"""

from __future__ import annotations

from unlearn_core.errors import ConfigError, abbreviate
from unlearn_core.unlearners.base import FAMILIES, Unlearner

_REGISTRY: dict[str, type[Unlearner]] = {}


def register_unlearner(cls: type[Unlearner]) -> type[Unlearner]:
    """Class decorator adding ``cls`` to the registry under ``cls.name``."""
    if cls.family not in FAMILIES:
        raise ValueError(f"{cls.__name__}.family={cls.family!r} is not one of {FAMILIES}")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"unlearner name {cls.name!r} registered twice")
    names = [p.name for p in cls.schema]
    if len(names) != len(set(names)):
        raise ValueError(f"{cls.name}: duplicate hyperparameter names in schema")
    for attribute in ("budget_param", "noise_param", "epsilon_param"):
        value = getattr(cls, attribute)
        if value is not None and value not in names:
            raise ValueError(f"{cls.name}.{attribute}={value!r} is not one of its hyperparameters")
    by_name = {p.name: p for p in cls.schema}
    for setting in cls.frontier_grid:
        for key, value in setting.items():
            if key not in by_name or key == cls.epsilon_param:
                raise ValueError(f"{cls.name}.frontier_grid: {key!r} is not one of its hyperparameters (other than ε)")
            by_name[key].validate(value)
    if cls.sequential != ("requests" in names):
        raise ValueError(f"{cls.name}.sequential={cls.sequential} but 'requests' is "
                         f"{'' if 'requests' in names else 'not '}a hyperparameter")
    _REGISTRY[cls.name] = cls
    return cls


def get_unlearner(name: str) -> Unlearner:
    """A fresh instance of the unlearner called ``name``.

    Raises:
        ConfigError: listing the registered names when ``name`` is unknown.
    """
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ConfigError(f"unknown method {abbreviate(name)}: choose one of {', '.join(sorted(_REGISTRY))}") from None


def list_unlearners() -> list[type[Unlearner]]:
    """All registered unlearner classes, sorted by family then name."""
    return sorted(_REGISTRY.values(), key=lambda c: (FAMILIES.index(c.family), c.name))


#: The capabilities :func:`methods_with` understands (keys of :meth:`Unlearner.capabilities`).
CAPABILITIES = ("certificate", "budget_param", "sequential", "noise_param", "epsilon_param", "demo_params",
                "frontier_grid", "certified_models", "training_optimizer")


def methods_with(capability: str) -> list[str]:
    """The registered methods that have ``capability`` (a truthy :meth:`Unlearner.capabilities` entry), in
    :func:`list_unlearners` order: e.g. ``methods_with("sequential")`` for the Sequential page's choices,
    ``methods_with("certificate")`` for the audit's."""
    if capability not in CAPABILITIES:
        raise ValueError(f"capability={capability!r} is not one of {', '.join(CAPABILITIES)}")
    return [cls.name for cls in list_unlearners() if cls.capabilities()[capability]]
