"""Progress reporting and cooperative cancellation, shared by training, unlearning and the UI's job registry.

A progress callback receives a plain dict (``stage``, ``epoch``, ``step``, ``loss``, ...). Long loops check a
``threading.Event`` every step and raise :class:`Cancelled` when it is set: Python threads cannot be killed,
so cancellation has to be cooperative.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ProgressCallback = Callable[[dict[str, Any]], None]


class Cancelled(Exception):
    """Raised inside long work when the cooperative cancel event is set."""
