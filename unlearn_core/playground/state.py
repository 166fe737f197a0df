"""The playground's state and its URL: data set, seed, model, deleted points, method and its λ/ε/δ — one link, one
exact picture.

``?dataset=moons&seed=3&model=logreg&deleted=12,40,41&method=certified_newton&p.lam=1&p.epsilon=10&p.delta=1e-05``

:func:`from_query` parses a query once, into a typed :class:`PlaygroundState`: every bad value gives one line that
names the key, the value (abbreviated) and what is allowed, and that field falls back to its default, so the page
still opens. Method hyperparameters travel as ``p.<name>`` (as on every page) and are parsed by the method's own
schema; the page writes λ, ε and δ, and keeps any other ``p.<name>`` a link sets. :func:`to_query` is the inverse.

UI-free (no streamlit): the page calls it, the tests call it directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from unlearn_core.config import format_value
from unlearn_core.errors import ConfigError, abbreviate
from unlearn_core.playground.data2d import DATASETS_2D, N_TRAIN
from unlearn_core.playground.engine import MODELS_2D
from unlearn_core.unlearners import get_unlearner, list_unlearners, resolve_params

PARAM_PREFIX = "p."
#: The hyperparameters the page has sliders for, when the method has them.
SLIDER_PARAMS = ("lam", "epsilon", "delta")
#: The URL keys the playground reads (besides ``p.<name>``).
KEYS = ("dataset", "seed", "model", "deleted", "method")
MAX_SEED = 2**32 - 1


def default_method() -> str:
    """Certified Newton when registered, else the first certified method, else the first method."""
    names = [cls.name for cls in list_unlearners()]
    if "certified_newton" in names:
        return "certified_newton"
    return next((cls.name for cls in list_unlearners() if cls.issues_certificate()), names[0])


@dataclass(frozen=True)
class PlaygroundState:
    """Everything a playground link carries. ``params`` holds the method's hyperparameters set by the link or the
    sliders (typed, validated by the method's schema); the others take the playground's defaults."""

    dataset: str = "blobs"
    seed: int = 0
    model: str = "logreg"
    deleted: tuple[int, ...] = ()
    method: str = field(default_factory=default_method)
    params: dict[str, Any] = field(default_factory=dict)

    def with_method(self, method: str) -> PlaygroundState:
        """The state with another method: the hyperparameters the new method also has (by name) are kept."""
        schema = {p.name for p in get_unlearner(method).schema}
        return replace(self, method=method, params={k: v for k, v in self.params.items() if k in schema})


def _first(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return str(value[-1]) if value else ""
    return str(value)


def parse_deleted(text: str, *, n_train: int = N_TRAIN) -> tuple[int, ...]:
    """``"3,17,42"`` → (3, 17, 42), sorted, duplicates dropped; empty text → ().

    Raises:
        ConfigError: anything but comma-separated point numbers in [0, n_train).
    """
    text = text.strip()
    if not text:
        return ()
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > n_train or not all(re.fullmatch(r"\d{1,6}", p) for p in parts):
        raise ConfigError(f"deleted={abbreviate(text)} is not valid: expected point numbers 0-{n_train - 1} "
                          "separated by commas, e.g. 3,17,42")
    values = sorted({int(p) for p in parts})
    bad = [v for v in values if v >= n_train]
    if bad:
        raise ConfigError(f"deleted={abbreviate(text)} is not valid: point {bad[0]} does not exist (points "
                          f"0-{n_train - 1})")
    return tuple(values)


def from_query(query: Mapping[str, Any]) -> tuple[PlaygroundState, list[str]]:
    """The state a query describes, and one error line per bad value (whose field keeps its default).

    Unknown keys are ignored (a link may carry another page's keys); ``p.<name>`` must name a hyperparameter of the
    link's method.
    """
    errors: list[str] = []
    base = PlaygroundState()
    values: dict[str, Any] = {}
    if "dataset" in query:
        text = _first(query["dataset"])
        if text in DATASETS_2D:
            values["dataset"] = text
        else:
            errors.append(f"dataset={abbreviate(text)} is not valid: choose one of {', '.join(DATASETS_2D)}")
    if "seed" in query:
        text = _first(query["seed"]).strip()
        if re.fullmatch(r"\d{1,10}", text) and int(text) <= MAX_SEED:
            values["seed"] = int(text)
        else:
            errors.append(f"seed={abbreviate(text)} is not valid: expected an integer in [0, {MAX_SEED}]")
    if "model" in query:
        text = _first(query["model"])
        if text in MODELS_2D:
            values["model"] = text
        else:
            errors.append(f"model={abbreviate(text)} is not valid: choose one of {', '.join(MODELS_2D)}")
    if "deleted" in query:
        try:
            values["deleted"] = parse_deleted(_first(query["deleted"]))
        except ConfigError as exc:
            errors.append(str(exc))
    method = base.method
    if "method" in query:
        text = _first(query["method"])
        try:
            method = get_unlearner(text).name
            values["method"] = method
        except ConfigError as exc:
            errors.append(f"method={abbreviate(text)} is not valid: {str(exc).split(': ', 1)[-1]}")
    schema = {p.name: p for p in get_unlearner(method).schema}
    params: dict[str, Any] = {}
    for key in sorted(k for k in query if str(k).startswith(PARAM_PREFIX)):
        name = str(key)[len(PARAM_PREFIX):]
        raw = _first(query[key])
        if name not in schema:
            errors.append(f"{abbreviate(str(key))} is not valid: {method} has no hyperparameter "
                          f"{abbreviate(name)} (it has {', '.join(schema)})")
            continue
        try:
            params[name] = resolve_params((schema[name],), {name: raw}, method=method)[name]
        except ConfigError as exc:
            errors.append(f"p.{exc}")
    values["params"] = params
    return replace(base, **values), errors


def to_query(state: PlaygroundState) -> dict[str, str]:
    """The state as URL query parameters (:func:`from_query` reads them back to the same state)."""
    query = {
        "dataset": state.dataset,
        "seed": str(state.seed),
        "model": state.model,
        "deleted": ",".join(str(i) for i in state.deleted),
        "method": state.method,
    }
    for name, value in sorted(state.params.items()):
        query[PARAM_PREFIX + name] = _format(value)
    return query


def _format(value: Any) -> str:
    """A value as URL text: ``%g`` where it is exact (``1e-05``, ``0.3``), else the float's full ``repr``."""
    text = format_value(value)
    if isinstance(value, float) and float(text) != value:
        return repr(value)
    return text


def apply_selection(deleted: tuple[int, ...], selection: Mapping[str, Any] | None) -> tuple[int, ...]:
    """The deleted points after a chart selection event (Streamlit's ``{"points": [...], "lasso": [...], ...}``).

    A click or a lasso on kept points deletes them; a click on a deleted point (✕) restores it; a lasso or a box
    never restores (it is drawn to delete). Each point carries ``customdata = [point number, deleted 0/1]``
    (:mod:`unlearn_core.playground.figures`); a typed array comes back from the browser as ``{"0": …, "1": …}``.
    Points without that data (a line, another chart) are ignored.
    """
    selection = selection or {}
    area = bool(selection.get("lasso")) or bool(selection.get("box"))
    out = set(deleted)
    for point in selection.get("points") or []:
        data = point.get("customdata") if isinstance(point, Mapping) else None
        if isinstance(data, Mapping):
            data = [data.get("0"), data.get("1")]
        if not isinstance(data, (list, tuple)) or len(data) != 2:
            continue
        try:
            index, was_deleted = int(data[0]), int(data[1])
        except (TypeError, ValueError):
            continue
        if not 0 <= index < N_TRAIN:
            continue
        if was_deleted:
            if not area:
                out.discard(index)
        else:
            out.add(index)
    return tuple(sorted(out))


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:=&\"'@%^])")


def plain(text: str) -> str:
    r"""``text`` with every Markdown-active character backslash-escaped, so that text from a URL (quoted in an error
    line) is shown as written and never as Markdown, a link, a colour directive or LaTeX. CommonMark lets any ASCII
    punctuation be escaped this way."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
