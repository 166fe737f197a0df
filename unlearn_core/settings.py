"""The run configuration's settings, collected from the dataclasses that declare them (:mod:`unlearn_core.config`).

Beside the pipeline (it imports :class:`~unlearn_core.run_config.RunConfig`), below the surfaces that are generated
from it: the CLI's parser, the dashboard's configuration state and widgets, ``python -m unlearn_core config``.
"""

from __future__ import annotations

from unlearn_core.config import Setting, settings_of
from unlearn_core.run_config import RunConfig


def run_config_class() -> type:
    """The run configuration's dataclass, :class:`~unlearn_core.pipeline.RunConfig` (a function, so that a test can
    declare a field on a subclass and see every surface take it up)."""
    return RunConfig


def run_settings() -> list[Setting]:
    """Every field of the run configuration (``RunConfig`` with its ``TrainConfig``), in declaration order."""
    return settings_of(run_config_class())
