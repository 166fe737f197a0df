"""The stored checkpoints of a training trajectory (the ``gd``/``noisy_gd`` recipes), for Rewind-to-Delete.

A recipe with ``checkpoints = C > 0`` hands the weights at C evenly spaced steps
(:func:`unlearn_core.recipes.checkpoint_steps`) to a :class:`CheckpointStore` while it trains. The pipeline keeps
them in the model cache next to the trained model (:class:`CacheCheckpoints`: one entry per checkpoint, keyed by
the model's key plus the step, written atomically and read with ``weights_only=True`` like every cached model), or in
memory when the run does not use the cache (:class:`MemoryCheckpoints`). A :class:`Trajectory` then offers the
rewind points: step 0 (the seeded initialisation, rebuilt on demand), the stored steps, and step T (the model).

**Bounded disk and memory.** C ≤ :data:`unlearn_core.limits.MAX_CHECKPOINTS`; each checkpoint is one copy of the
parameters (:func:`checkpoint_bytes`), for the original model and for the retrained oracle (the audit rewinds the
oracle's own trajectory for its reference arm). Rewind-to-Delete's ``work_estimate`` states this in the run's
estimate before anything is trained.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from unlearn_core.errors import ConfigError

#: Bytes per stored number (float32 checkpoints).
CHECKPOINT_FLOAT_BYTES = 4


def checkpoint_bytes(*, num_params: int, count: int, models: int = 2) -> float:
    """Disk (cache) or memory (no cache) the checkpoints of ``models`` trajectories take: count × p floats each."""
    return float(models) * float(count) * float(num_params) * CHECKPOINT_FLOAT_BYTES


class CheckpointStore(Protocol):
    """Where a trajectory's checkpoints go while training, and where they are read back from."""

    def save(self, step: int, model: nn.Module) -> None: ...

    def load(self, step: int, into: nn.Module) -> bool: ...

    def missing(self, steps: Sequence[int]) -> list[int]: ...


@dataclass
class MemoryCheckpoints:
    """Checkpoints as CPU copies of the state dict (a run without the cache)."""

    states: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    def save(self, step: int, model: nn.Module) -> None:
        self.states[int(step)] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def load(self, step: int, into: nn.Module) -> bool:
        state = self.states.get(int(step))
        if state is None:
            return False
        into.load_state_dict(state)
        return True

    def missing(self, steps: Sequence[int]) -> list[int]:
        return [int(s) for s in steps if int(s) not in self.states]


@dataclass
class CacheCheckpoints:
    """Checkpoints as entries of the model cache, keyed by the trained model's key plus ``checkpoint: step``."""

    cache: Any  # unlearn_core.cache.ModelCache
    key: dict[str, Any]

    def _key(self, step: int) -> dict[str, Any]:
        return {**self.key, "checkpoint": int(step)}

    def save(self, step: int, model: nn.Module) -> None:
        self.cache.save(self._key(step), model, {"checkpoint_step": int(step)})

    def load(self, step: int, into: nn.Module) -> bool:
        return self.cache.load(self._key(step), into) is not None

    def missing(self, steps: Sequence[int]) -> list[int]:
        return [int(s) for s in steps if not self.cache.path(self._key(s)).is_file()]


@dataclass
class Trajectory:
    """The rewind points of one trained model: step 0 (its initialisation), the stored checkpoints, step T.

    ``final`` is the trained model object itself (a method finds the trajectory of the model it is given by
    identity, :meth:`belongs_to`); ``init()`` rebuilds the seeded initialisation; ``recipe`` is the recipe that
    produced it (``unlearn_core.training.TrainConfig``).
    """

    total_steps: int
    steps: tuple[int, ...]
    recipe: Any
    final: nn.Module
    init: Callable[[], nn.Module]
    store: CheckpointStore
    #: Values computed once per trajectory by a method (e.g. Rewind-to-Delete's measured smoothness at a checkpoint),
    #: keyed by the method: the trajectory never changes, so neither do they.
    derived: dict[Any, Any] = field(default_factory=dict, repr=False)

    def available(self) -> list[int]:
        """Every step the trajectory can rewind to, ascending: 0, the stored checkpoints, T."""
        return sorted({0, *self.steps, int(self.total_steps)})

    def rewind_point(self, at_most: int) -> int:
        """The latest available step ≤ ``at_most`` (0, the initialisation, always qualifies)."""
        return max(s for s in self.available() if s <= max(0, int(at_most)))

    def belongs_to(self, model: nn.Module) -> bool:
        return model is self.final

    def load(self, step: int) -> nn.Module:
        """A fresh model holding the weights after ``step`` steps (a copy: safe to modify)."""
        step = int(step)
        if step == 0:
            return self.init()
        if step == int(self.total_steps):
            return copy.deepcopy(self.final)
        if step not in self.steps:
            raise ConfigError(f"step {step} is not a stored checkpoint: the trajectory keeps {list(self.available())}")
        model = self.init()
        if not self.store.load(step, model):
            raise ConfigError(f"the checkpoint at step {step} is missing from the cache: run again (it is retrained)")
        return model
