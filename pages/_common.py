"""Shared UI pieces of the dashboard pages: state ↔ widgets, the job poller, result rendering, downloads.

Pages stay thin: they read widgets, call :mod:`unlearn_core` (through the background job registry) and render
figures. Nothing here trains a model or does maths; the worker functions live in :mod:`unlearn_core.jobs`.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import streamlit as st

from unlearn_core import limits, paths, plots, ui_state
from unlearn_core.certificate import (
    CERTIFIED,
    NOT_CERTIFIED,
    STATUSES,
    UNDER_ASSUMPTIONS,
    certificate_from_card,
)
from unlearn_core.data import DATASETS
from unlearn_core.errors import ConfigError
from unlearn_core.forget import parse_forget_spec
from unlearn_core.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    WARM_UP,
    Job,
    JobRegistry,
    default_torch_threads,
)
from unlearn_core.models import MODELS, parse_hidden
from unlearn_core.pipeline import validate_config
from unlearn_core.runstore import RunStore, card_row, rows_to_csv
from unlearn_core.training import CONVEX_GRAD_TOL, OPTIMIZERS
from unlearn_core.ui_state import UIConfig
from unlearn_core.unlearners import HyperParam, get_unlearner, list_unlearners, resolve_params
from unlearn_core.verdict import Verdict, verdict_from_card

POLL_SECONDS = 0.5
FAMILY_BADGE = {
    "certified": ":green-badge[certified method]",
    "approximate": ":orange-badge[approximate (uncertified)]",
    "heuristic": ":gray-badge[heuristic (uncertified)]",
    "oracle": ":blue-badge[exact (oracle)]",
}


# ------------------------------------------------------------------------------------------------------------
# Singletons shared by every session
# ------------------------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def get_registry() -> JobRegistry:
    """The process-wide job registry (thread-safe); two sessions with the same config share one job.

    Jobs leave one core to the server and the browser (:func:`unlearn_core.jobs.default_torch_threads`). A
    watcher counts only while its Streamlit session is connected (:func:`session_is_live`) and beating.
    """
    return JobRegistry(torch_threads=default_torch_threads(), is_live=lambda session: session_is_live(session),
                       warm_up=WARM_UP)


def session_is_live(session: str) -> bool | None:
    """Whether the browser session ``session`` is still connected (``None`` when Streamlit cannot say: AppTest).

    Streamlit drops a session from its active ones when its websocket closes (tab closed, browser gone); a
    reconnect after a network blip makes it active again.
    """
    try:
        from streamlit import runtime

        if not runtime.exists():
            return None
        return runtime.get_instance().is_active_session(session)
    except Exception:  # an internal API: unknown is the safe answer
        return None


def warm_up() -> bool:
    """Start, once per server process, the background import of what the first job would import lazily
    (:class:`unlearn_core.jobs.WarmUp`); the registry's jobs wait for it. Returns whether this call started it."""
    return WARM_UP.start()


@st.cache_resource(show_spinner=False)
def _store_for(root: str) -> RunStore:
    return RunStore(root)


def get_store() -> RunStore:
    """The run history in the cache directory (``UNLEARN_CACHE_DIR`` or the user cache)."""
    return _store_for(str(paths.cache_dir()))


def delete_runs(runs: list[Any]) -> None:
    """Delete stored runs and forget their finished jobs, so that the next Run with that configuration recomputes.

    The registry keeps finished jobs by configuration hash (the run's ``config_hash``) for reuse; without this,
    pressing Run again would hand back the deleted result.
    """
    store, registry = get_store(), get_registry()
    for run in runs:
        store.delete(run.id)
        registry.forget(run.config_hash)


# ------------------------------------------------------------------------------------------------------------
# Configuration state: URL → session state → widgets → UIConfig → URL
# ------------------------------------------------------------------------------------------------------------


def _k(prefix: str, name: str) -> str:
    return f"{prefix}.{name}"


def _param_key(prefix: str, method: str, name: str) -> str:
    return f"{prefix}.p.{method}.{name}"


def _placeholder(p: HyperParam) -> float | int:
    """A numeric value for a number widget whose parameter is currently 'auto' or 'none' (its numeric default
    where it has one, e.g. the paper's H = 1000, so switching to 'value' starts from a sensible number)."""
    if isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
        return int(p.default) if p.type is int else float(p.default)
    value: float = 0.0
    if p.low is not None:
        value = max(float(p.low), value)
    if p.high is not None:
        value = min(float(p.high), value)
    return int(value) if p.type is int else float(value)


def _three_way(p: HyperParam) -> bool:
    """A parameter that takes 'auto', 'none' and numbers (e.g. NegGrad's stop_forget_acc): a mode radio plus a
    number. Every other 'auto' or optional parameter is one number input, left empty for 'auto' / 'none'."""
    return p.auto and p.optional


def _seed_param(prefix: str, method: str, p: HyperParam, value: Any) -> None:
    key = _param_key(prefix, method, p.name)

    def number(v: Any) -> int | float:
        return int(v) if p.type is int else float(v)

    if _three_way(p):
        mode = "auto" if value == "auto" else "none" if value is None else "value"
        st.session_state[key + ".mode"] = mode
        st.session_state[key] = _placeholder(p) if mode != "value" else number(value)
    elif p.auto or p.optional:
        st.session_state[key] = None if value == "auto" or value is None else number(value)
    elif p.type in (int, float):
        st.session_state[key] = number(value)
    else:
        st.session_state[key] = value


def seed_widgets(prefix: str, cfg: UIConfig) -> None:
    """Write ``cfg`` into the widget keys of page ``prefix`` (on first load, and for the preset buttons)."""
    ss = st.session_state
    ss[_k(prefix, "dataset")] = cfg.dataset
    ss[_k(prefix, "model")] = cfg.model
    ss[_k(prefix, "hidden")] = "-".join(map(str, cfg.hidden))
    spec = parse_forget_spec(cfg.forget)
    ss[_k(prefix, "fkind")] = spec.kind
    ss[_k(prefix, "famount")] = float(spec.fraction if spec.fraction is not None else (spec.count or 0.1))
    ss[_k(prefix, "fclasses")] = list(spec.classes) if spec.kind == "class" else [0]
    ss[_k(prefix, "fclass")] = spec.classes[0] if spec.kind == "class-fraction" else 0
    ss[_k(prefix, "ffrac")] = float(spec.fraction) if spec.kind == "class-fraction" else 0.5
    ss[_k(prefix, "findices")] = ",".join(map(str, spec.indices)) if spec.kind == "indices" else "0,1,2"
    ss[_k(prefix, "seed")] = int(cfg.seed)
    ss[_k(prefix, "forget_seed")] = int(cfg.forget_seed)
    ss[_k(prefix, "epochs")] = int(cfg.epochs)
    ss[_k(prefix, "lr")] = float(cfg.lr)
    ss[_k(prefix, "batch_size")] = int(cfg.batch_size)
    ss[_k(prefix, "wd")] = float(cfg.weight_decay)
    ss[_k(prefix, "use_C")] = cfg.norm_bound is not None
    ss[_k(prefix, "C")] = float(cfg.norm_bound if cfg.norm_bound is not None else 20.0)
    ss[_k(prefix, "optimizer")] = cfg.optimizer
    ss[_k(prefix, "use_tol")] = cfg.grad_tol is not None
    ss[_k(prefix, "grad_tol")] = float(cfg.grad_tol if cfg.grad_tol is not None else CONVEX_GRAD_TOL)
    ss[_k(prefix, "max_iter")] = int(cfg.max_iter)
    ss[_k(prefix, "device")] = cfg.device
    ss[_k(prefix, "method")] = cfg.method
    params = ui_state.full_params(cfg)
    for p in get_unlearner(cfg.method).schema:
        _seed_param(prefix, cfg.method, p, params[p.name])


#: The setup widgets of every page (keys ``<prefix>.<name>``; the method's are ``<prefix>.p.<method>.<name>``).
CONFIG_WIDGETS = ("dataset", "model", "hidden", "fkind", "famount", "fclasses", "fclass", "ffrac", "findices", "seed",
                  "forget_seed", "epochs", "lr", "batch_size", "wd", "use_C", "C", "optimizer", "use_tol", "grad_tol",
                  "max_iter", "device", "method")


def begin_script_run() -> None:
    """Top of app.py: remember whether the previous script run of this session was cut short.

    A run is cut short when the browser asks for a new one before it ended (a click on Run while the first page was
    still being drawn; a widget changed mid-run) or when it stopped itself (``st.rerun``, ``st.stop``).
    """
    ss = st.session_state
    ss["_previous_run_cut"] = bool(ss.get("_script_running", False))
    ss["_script_running"] = True


def end_script_run() -> None:
    """Bottom of app.py: this script run reached its end."""
    st.session_state["_script_running"] = False


def reassert_widgets(prefix: str) -> None:
    """Write every setup and hyperparameter widget's value back into session state, so that this run sends each
    value to the browser again.

    Why: after a script run cut short by a click (seen in Chromium: Run clicked within a second of the first page),
    Streamlit's frontend showed the form at its widget defaults (ε = 0.001, model logreg) although the server held —
    and ran — the seeded values; a second Run would then have sent the defaults. A value written through session
    state before its widget is drawn is sent to the browser with the widget, which puts the two back in step.
    """
    ss = st.session_state
    keys = [_k(prefix, n) for n in CONFIG_WIDGETS] + [k for k in list(ss.keys()) if k.startswith(f"{prefix}.p.")]
    for key in keys:
        if key in ss:
            ss[key] = ss[key]


def init_page(prefix: str, *, extra_fields: Mapping[str, Callable[[str], Any]] | None = None) -> dict[str, Any]:
    """First visit of a page in a session: restore the configuration from the URL (deep link).

    ``?preset=<slug>`` (e.g. ``?preset=quick-demo``, the links on the Learn page) loads a preset first; the other
    parameters of the URL then override it. Bad parameters become one-line warnings (kept until the next Run) and
    fall back to defaults. Returns the page-specific extras parsed from the URL (only on the first visit; ``{}``
    afterwards).
    """
    ss = st.session_state
    extras: dict[str, Any] = {}
    if not ss.get(_k(prefix, "_init")):
        query = st.query_params.to_dict()
        base = ss.get("shared_config") or UIConfig(method=ui_state.default_method())
        warnings: list[str] = []
        if "preset" in query:
            raw = query.pop("preset")
            try:
                base = preset_config(prefix, ui_state.parse_preset(raw[-1] if isinstance(raw, list) else str(raw)))
            except ConfigError as exc:
                warnings.append(str(exc))
        cfg, extras, parsed = ui_state.from_query(query, base=base, extra_fields=extra_fields)
        warnings += parsed
        seed_widgets(prefix, cfg)
        ss[_k(prefix, "_warnings")] = warnings
        ss[_k(prefix, "_extras")] = extras
        ss[_k(prefix, "_init")] = True
    elif _k(prefix, "dataset") not in ss:
        # Streamlit dropped this page's widget state: it does so for every page the session leaves (a page switch),
        # and it has been seen to do so mid-run. The widgets would come back at their defaults (epochs 0, lr 1e-6, an
        # empty hidden width...), a different and often invalid configuration that stops the page before its job
        # panel — the results of a finished job then never appear. Restore the last configuration the page read.
        seed_widgets(prefix, ss.get(_k(prefix, "_cfg")) or ss.get("shared_config")
                     or UIConfig(method=ui_state.default_method()))
    elif ss.get("_previous_run_cut"):
        reassert_widgets(prefix)
    for line in ss.get(_k(prefix, "_warnings"), []):
        st.warning(line, icon=":material/warning:")
    return ss.get(_k(prefix, "_extras"), {})


def seed_once(key: str, value: Any) -> None:
    """Give widget ``key`` its value before the widget exists (a URL value or a default), unless it has one.

    Widgets seeded this way are created without ``value=``: Streamlit warns when both set a widget's value.
    """
    if key not in st.session_state:
        st.session_state[key] = value


def preset_config(prefix: str, name: str) -> UIConfig:
    """Preset ``name`` as this page uses it.

    Pages with their own method list (Compare, Sequential, Sensitivity) keep their method and take the preset's
    settings for it (:func:`unlearn_core.ui_state.preset_params`). On Sequential, requests chain from the noiseless
    estimate: with a certified σ (≈ 10⁶ for certified Newton on an MLP) a noised chain starts request 2 from
    noise, where LiSSA diverges; the noiseless chain is the method's other documented mode.
    """
    cfg = ui_state.preset(name)
    method = st.session_state.get(_k(prefix, "method"))
    if prefix != "explore" and method in ui_state.method_names() and method != cfg.method:
        cfg = dataclasses.replace(cfg, method=method, params=ui_state.preset_params(name, method))
    chains = any(p.name == "chain_from" for p in get_unlearner(cfg.method).schema)
    if prefix == "sequential" and chains:
        cfg = dataclasses.replace(cfg, params={**cfg.params, "chain_from": "noiseless"})
    return cfg


def seed_method_params(prefix: str, method: str, params: Mapping[str, Any]) -> None:
    """Write ``method``'s hyperparameters (defaults, updated by ``params``) into the page's widgets."""
    values = resolve_params(get_unlearner(method).schema, dict(params), method=method)
    for p in get_unlearner(method).schema:
        _seed_param(prefix, method, p, values[p.name])


def apply_preset(prefix: str, name: str) -> None:
    """Button callback: load a preset into the page's widgets (on Compare: every method's hyperparameters)."""
    seed_widgets(prefix, preset_config(prefix, name))
    if prefix == "compare":
        for method in ui_state.method_names():
            seed_method_params(prefix, method, ui_state.preset_params(name, method))
    st.session_state[_k(prefix, "_warnings")] = []
    st.session_state[_k(prefix, "_preset")] = name


#: The quick demo's button icon (Material Symbols: headless Chromium has no emoji font). The other presets have
#: none, so that all five fit in one row at 1024 px.
PRESET_ICONS = {ui_state.QUICK_DEMO: ":material/bolt:"}


def presets_row(prefix: str) -> None:
    """One button per preset, in a row at the top of the page (each tells one story; the tooltip says which)."""
    with st.container(horizontal=True, gap="xsmall", vertical_alignment="center"):
        st.markdown("**Try:**", width="content")
        for name, story in ui_state.PRESETS.items():
            st.button(name, key=_k(prefix, f"preset.{name}"), help=story, on_click=apply_preset, args=(prefix, name),
                      icon=PRESET_ICONS.get(name), width="content")


def _forget_spec_from_widgets(prefix: str) -> str:
    ss = st.session_state
    kind = ss[_k(prefix, "fkind")]
    if kind == "random":
        amount = float(ss[_k(prefix, "famount")])
        return f"random:{int(amount)}" if amount >= 1 else f"random:{amount:g}"
    if kind == "class":
        classes = sorted(ss[_k(prefix, "fclasses")]) or [0]
        return "class:" + ",".join(map(str, classes))
    if kind == "class-fraction":
        return f"class-fraction:{ss[_k(prefix, 'fclass')]}:{float(ss[_k(prefix, 'ffrac')]):g}"
    return "indices:" + ss[_k(prefix, "findices")].replace(" ", "")


FORGET_KINDS = {"random": "random points", "class": "whole classes", "class-fraction": "part of a class",
                "indices": "given indices"}


def config_widgets(prefix: str, *, method: bool = True) -> None:
    """The setup: dataset, model, forget set (and the method) in one row; widths, seeds, epochs and the training
    recipe in a "Details" expander. Outside any form: changing them starts no work."""
    ss = st.session_state
    cols = st.columns([1, 1, 1.1, 1.2, 2.2] if method else [1, 1, 1.1, 1.2])
    cols[0].selectbox("Dataset", list(DATASETS), key=_k(prefix, "dataset"),
                      help="\n\n".join(f"**{k}**: {v.description}" for k, v in DATASETS.items()))
    cols[1].selectbox("Model", list(MODELS), key=_k(prefix, "model"),
                      help="\n\n".join(f"**{k}**: {v.description}" for k, v in MODELS.items()))
    num_classes = DATASETS[ss[_k(prefix, "dataset")]].num_classes
    cols[2].selectbox("Forget set", list(FORGET_KINDS), key=_k(prefix, "fkind"), format_func=FORGET_KINDS.get,
                      help="Which training points are to be forgotten.")
    kind = ss[_k(prefix, "fkind")]
    with cols[3]:
        if kind == "random":
            st.number_input("Fraction (< 1) or count (≥ 1)", min_value=0.0001, max_value=1e6, step=0.05,
                            format="%g", key=_k(prefix, "famount"))
        elif kind == "class":
            if any(c >= num_classes for c in ss[_k(prefix, "fclasses")]):
                ss[_k(prefix, "fclasses")] = [0]
            st.multiselect("Classes", list(range(num_classes)), key=_k(prefix, "fclasses"))
        elif kind == "class-fraction":
            if ss[_k(prefix, "fclass")] >= num_classes:
                ss[_k(prefix, "fclass")] = 0
            st.selectbox("Class", list(range(num_classes)), key=_k(prefix, "fclass"))
            st.slider("Fraction of the class", 0.01, 0.99, key=_k(prefix, "ffrac"))
        else:
            st.text_input("Indices (comma-separated)", key=_k(prefix, "findices"))
    if method:
        names = ui_state.method_names()
        if ss.get(_k(prefix, "method")) not in names:
            ss[_k(prefix, "method")] = ui_state.default_method()
        families = {cls.name: cls for cls in list_unlearners()}
        cols[4].selectbox(
            "Unlearning method", names, key=_k(prefix, "method"),
            format_func=lambda n: f"{n} — {families[n].family}",
        )
        cls = families[ss[_k(prefix, "method")]]
        st.caption(f"{FAMILY_BADGE.get(cls.family, cls.family)} {cls.summary}", help=cls.paper)
    with st.expander("Details: widths, seeds, epochs, training recipe", icon=":material/tune:"):
        c1, c2, c3, c4 = st.columns(4)
        if ss[_k(prefix, "model")] == "mlp":
            c1.text_input("Hidden widths", key=_k(prefix, "hidden"), help="MLP hidden layer widths, e.g. 32-32")
        c2.number_input("Epochs", min_value=0, max_value=limits.MAX_EPOCHS, step=1, key=_k(prefix, "epochs"),
                        help="The same recipe trains the original model and the retrained oracle. Epochs of "
                             "Adam/SGD; L-BFGS counts iterations instead (Max L-BFGS iterations).")
        c3.number_input("Forget-set seed", min_value=0, max_value=limits.MAX_SEED, step=1,
                        key=_k(prefix, "forget_seed"))
        c4.number_input("Seed", min_value=0, max_value=limits.MAX_SEED, step=1, key=_k(prefix, "seed"),
                        help="Initialisation, shuffling and the unlearner's own randomness.")
        st.markdown("**Training recipe** — the same for the original model and the retrained oracle")
        c1, c2, c3, c4 = st.columns(4)
        c1.selectbox(
            "Optimiser", list(OPTIMIZERS), key=_k(prefix, "optimizer"),
            help="**auto**: full-batch L-BFGS until ‖∇‖ ≤ the tolerance for the convex model (logistic "
                 f"regression; tolerance {CONVEX_GRAD_TOL:g} unless set below), Adam for the others. **lbfgs**: "
                 "full-batch L-BFGS with a line search on cross-entropy + (wd/2)‖w‖² — it reaches a minimiser, "
                 "where one Newton step lands on the retrained model; it ignores the epochs, learning rate and "
                 "batch size. **adam**, **sgd**: mini-batch, as in the paper.",
        )
        c1.number_input("Max L-BFGS iterations", min_value=0, max_value=limits.MAX_LBFGS_ITER, step=50,
                        key=_k(prefix, "max_iter"), help="The cap of the lbfgs optimiser (Adam/SGD run epochs).")
        c2.checkbox("Stop at a gradient tolerance", key=_k(prefix, "use_tol"),
                    help="Train until ‖∇(L(w, D) + wd/2‖w‖²)‖ ≤ tolerance on the whole training set (checked "
                         "after every L-BFGS iteration, every Adam/SGD epoch), for the original and the "
                         "retrained model alike. A retrained model that meets it makes G = tolerance a bound.")
        c2.number_input("Gradient tolerance", min_value=1e-12, max_value=limits.GRAD_TOL_RANGE[1], format="%g",
                        key=_k(prefix, "grad_tol"))
        # The bounds are limits.py's, the URL parser's too: a deep-linked value is never clamped silently.
        c3.number_input("Learning rate", min_value=limits.LR_RANGE[0], max_value=limits.LR_RANGE[1], format="%g",
                        key=_k(prefix, "lr"))
        c3.number_input("Batch size", min_value=1, max_value=limits.MAX_BATCH_SIZE, step=1,
                        key=_k(prefix, "batch_size"))
        c4.number_input("Weight decay", min_value=0.0, max_value=limits.MAX_WEIGHT_DECAY, format="%g",
                        key=_k(prefix, "wd"))
        c4.checkbox("Project onto ‖w‖ ≤ C while training", key=_k(prefix, "use_C"),
                    help="Zhang et al. project onto the C-ball after every step; the certificate assumes it.")
        c4.number_input("Training norm bound C", min_value=limits.NORM_BOUND_RANGE[0],
                        max_value=limits.NORM_BOUND_RANGE[1], format="%g", key=_k(prefix, "C"),
                        help="The radius of the training projection (not the method's own C, which is the radius "
                             "the bound assumes; the certificate checks that the two agree).")
        c1.selectbox("Device", ["auto", "cpu", "cuda", "mps"], key=_k(prefix, "device"))


def param_widgets(prefix: str, method: str, *, skip: tuple[str, ...] = (), columns: int = 3) -> None:
    """The method's hyperparameters as widgets, built from its schema (call inside a form).

    The ``basic`` ones (λ, ε, δ, iteration counts, the method's main knobs) come first with their human labels;
    the ``advanced`` ones wait in an "Advanced" expander. The widget keys carry the schema's names, which stay the
    names of the CLI, the JSON card and the URL (the label is display only).
    """
    schema = [p for p in get_unlearner(method).schema if p.name not in skip]
    if not schema:
        st.caption("This method has no hyperparameters.")
        return
    basic = [p for p in schema if p.level == "basic"]
    advanced = [p for p in schema if p.level != "basic"]
    _param_grid(prefix, method, basic, columns)
    if advanced:
        with st.expander(f"Advanced: {len(advanced)} more", icon=":material/settings:"):
            _param_grid(prefix, method, advanced, columns)


def _param_grid(prefix: str, method: str, params: list[HyperParam], columns: int) -> None:
    cols: list[Any] = []
    for i, p in enumerate(params):
        key = _param_key(prefix, method, p.name)
        if key not in st.session_state or (_three_way(p) and key + ".mode" not in st.session_state):
            _seed_param(prefix, method, p, p.default)
        if i % columns == 0:
            cols = st.columns(columns)  # one row at a time, so that a two-widget 'auto' parameter keeps its row
        with cols[i % columns]:
            _param_widget(p, key)


def _param_widget(p: HyperParam, key: str) -> None:
    label = p.display
    help_text = (f"{p.help}\n\nName in the CLI, the JSON card and the URL: `{p.name}` (`--set {p.name}=…`, "
                 f"`p.{p.name}=…`).")
    if p.type is bool:
        st.checkbox(label, key=key, help=help_text)
        return
    if p.type is str:
        if p.choices:
            st.selectbox(label, list(p.choices), key=key, help=help_text)
        else:
            st.text_input(label, key=key, help=help_text)
        return
    number_kwargs: dict[str, Any] = dict(
        min_value=None if p.low is None else (int(p.low) if p.type is int else float(p.low)),
        max_value=None if p.high is None else (int(p.high) if p.type is int else float(p.high)),
        key=key, help=help_text,
    )
    if p.type is int:
        number_kwargs["step"] = 1
    else:
        number_kwargs["format"] = "%g"
    if _three_way(p):
        st.radio(label, ["auto", "none", "value"], key=key + ".mode", horizontal=True, help=help_text)
        st.number_input(f"{p.label or p.name} (used when 'value')", **number_kwargs)
        return
    if p.auto or p.optional:
        special = "auto" if p.auto else "none"
        st.number_input(label, placeholder=special, **{
            **number_kwargs, "help": f"{help_text}\n\nLeave it empty for '{special}'."})
        return
    bounded = p.low is not None and p.high is not None
    if bounded and not p.log and p.type is int and p.high - p.low <= 100:
        st.slider(label, int(p.low), int(p.high), key=key, help=help_text)
    elif bounded and not p.log and p.type is float:
        st.slider(label, float(p.low), float(p.high), key=key, help=help_text, format="%g")
    else:
        st.number_input(label, **number_kwargs)


def read_params(prefix: str, method: str) -> dict[str, Any]:
    """The hyperparameter values in the widgets, typed (``auto``/``None`` for an empty 'auto'/optional input)."""
    out: dict[str, Any] = {}
    for p in get_unlearner(method).schema:
        key = _param_key(prefix, method, p.name)
        if key not in st.session_state:
            continue
        value = st.session_state[key]
        if _three_way(p):
            mode = st.session_state.get(key + ".mode")
            out[p.name] = "auto" if mode == "auto" else None if mode == "none" else value
        elif (p.auto or p.optional) and value is None:
            out[p.name] = "auto" if p.auto else None
        else:
            out[p.name] = value
    return out


def read_config(prefix: str, *, method: str | None = None) -> UIConfig:
    """The page's widgets as a :class:`UIConfig` (raises :class:`ConfigError` for a malformed value)."""
    ss = st.session_state
    method = method or ss.get(_k(prefix, "method")) or ui_state.default_method()
    hidden = parse_hidden(ss.get(_k(prefix, "hidden"), "32-32"))
    spec = _forget_spec_from_widgets(prefix)
    parse_forget_spec(spec)
    cfg = UIConfig(
        dataset=ss[_k(prefix, "dataset")], model=ss[_k(prefix, "model")], hidden=hidden, forget=spec,
        method=method, params=read_params(prefix, method), seed=int(ss[_k(prefix, "seed")]),
        forget_seed=int(ss[_k(prefix, "forget_seed")]), epochs=int(ss[_k(prefix, "epochs")]),
        lr=float(ss[_k(prefix, "lr")]), batch_size=int(ss[_k(prefix, "batch_size")]),
        weight_decay=float(ss[_k(prefix, "wd")]),
        norm_bound=float(ss[_k(prefix, "C")]) if ss[_k(prefix, "use_C")] else None,
        optimizer=ss[_k(prefix, "optimizer")], device=ss[_k(prefix, "device")],
        grad_tol=float(ss[_k(prefix, "grad_tol")]) if ss[_k(prefix, "use_tol")] else None,
        max_iter=int(ss[_k(prefix, "max_iter")]),
    )
    cfg = dataclasses.replace(cfg, params=ui_state.full_params(cfg))
    st.session_state["shared_config"] = cfg
    st.session_state[_k(prefix, "_cfg")] = cfg  # not a widget key: survives what Streamlit drops (see init_page)
    return cfg


def sync_url(cfg: UIConfig, *, extra: Mapping[str, Any] | None = None) -> None:
    """Put the whole configuration into the URL so that the link reproduces it."""
    query = ui_state.to_query(cfg, extra=extra)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


def config_or_stop(prefix: str, *, method: str | None = None, extra: Mapping[str, Any] | None = None,
                   with_params: bool = True) -> UIConfig:
    """Read the page's configuration and mirror it into the URL; a malformed value stops the page with st.error.

    ``with_params=False``: the URL leaves out ``p.<name>`` (Compare carries ``p.<method>.<name>`` in ``extra``).
    """
    try:
        cfg = read_config(prefix, method=method)
    except ConfigError as exc:
        engine_error(exc)
        st.session_state["_config_invalid"] = True  # run_config_or_stop refuses to start anything with it
        last = st.session_state.get(_k(prefix, "_cfg"))
        if last is None or not (st.session_state.get(_k(prefix, "job")) or st.session_state.get(_k(prefix, "stored"))):
            st.stop()
        # A job of this page is running or has finished: an invalid widget value must not hide its status or its
        # results, so the page goes on with the last valid configuration (the URL keeps it too).
        return last
    st.session_state["_config_invalid"] = False
    sync_url(cfg if with_params else dataclasses.replace(cfg, params={}), extra=extra)
    return cfg


def run_config_or_stop(cfg: UIConfig, **overrides: Any) -> tuple[Any, dict[str, Any]]:
    """``cfg`` as the engine's RunConfig (``overrides`` passed to ``to_run_config``), validated before any work,
    and its resolved hyperparameters; an invalid one stops the page with st.error. Nothing starts while the widgets
    hold an invalid value (``config_or_stop`` then hands the page the last valid configuration only to show it)."""
    if st.session_state.get("_config_invalid"):
        st.stop()
    try:
        run_config = cfg.to_run_config(**overrides)
        return run_config, validate_config(run_config)
    except ConfigError as exc:
        engine_error(exc)
        st.stop()


def method_select(prefix: str, methods: list[str], *, empty: str, why: str = "it does not fit this page") -> str:
    """A method selectbox restricted to ``methods`` (e.g. those with a ``requests`` hyperparameter).

    A method carried over from another page or a deep link that is not in ``methods`` falls back to the first,
    with a warning that names it, says why (``why``) and what is used instead — never silently.
    """
    if not methods:
        st.info(empty)
        st.stop()
    current = st.session_state.get(_k(prefix, "method"))
    if current not in methods:
        if current is not None:
            line = (f"method={current!r} cannot be used here: {why} — using {methods[0]} (choose one of "
                    f"{', '.join(methods)})")
            st.session_state.setdefault(_k(prefix, "_warnings"), []).append(line)
            st.warning(line, icon=":material/warning:")
        st.session_state[_k(prefix, "method")] = methods[0]
        seed_method_params(prefix, methods[0], {})
    config_widgets(prefix, method=False)
    return st.selectbox("Method", methods, key=_k(prefix, "method"))


# ------------------------------------------------------------------------------------------------------------
# Jobs: submit, poll, cancel
# ------------------------------------------------------------------------------------------------------------


#: The app-wide heartbeat's period: each open page renews its watchers this often, whatever page it shows.
HEARTBEAT_SECONDS = 5.0


def session_id() -> str:
    """This browser session's id (who is waiting for a shared job): Streamlit's own, so that the registry can ask
    the runtime whether the session is still connected; a random one where there is no runtime context."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if runtime.exists() and ctx is not None and getattr(ctx, "session_id", None):
        return str(ctx.session_id)
    if "_session_id" not in st.session_state:  # AppTest: no runtime, and every AppTest has the same ctx id
        st.session_state["_session_id"] = uuid.uuid4().hex
    return st.session_state["_session_id"]


@st.fragment(run_every=HEARTBEAT_SECONDS)
def session_heartbeat() -> None:
    """Called once per run by ``app.py``: keeps this session's watchers alive on every page (a user reading the
    Learn page while Explore's job runs is still waiting for it), and catches a finished job whose results the page
    has not shown (a missed transition): it reruns the app, which renders them."""
    registry = get_registry()
    registry.heartbeat(session_id())
    if finished_unshown(registry, st.session_state):
        st.rerun(scope="app")


def finished_unshown(registry: JobRegistry, state: Mapping[str, Any]) -> bool:
    """Whether the job of the page last rendered (``state["_panel"]``) has finished but its results were not drawn."""
    prefix = state.get("_panel")
    key = state.get(_k(prefix, "job")) if prefix else None
    job = registry.get(key) if key else None
    return job is not None and job.done and state.get(_k(prefix, "shown")) != job.id


def submit(prefix: str, key: str, fn: Callable[..., Any], *, label: str) -> Job:
    """Start (or join) the background job ``key`` and remember it as the page's current job."""
    job = get_registry().submit(key, fn, label=label, watcher=session_id())
    st.session_state[_k(prefix, "job")] = key
    return job


def current_job(prefix: str) -> Job | None:
    key = st.session_state.get(_k(prefix, "job"))
    return None if key is None else get_registry().get(key)


#: The live loss chart of a running job, as a plain Vega-Lite spec. Why not ``st.line_chart``: it builds its spec
#: through Altair, ≈ 55 ms of Python (holding the GIL the job's thread needs) on every 0.5-s poll; in a real
#: browser the quick demo took 9.6–10.5 s from click to results with it and 5.8–6.6 s without any chart.
LOSS_CHART: dict[str, Any] = {
    "mark": {"type": "line", "point": True},
    "height": 180,
    "encoding": {
        "x": {"field": "epoch", "type": "quantitative", "title": "epoch"},
        "y": {"field": "loss", "type": "quantitative", "title": "training loss"},
        "color": {"field": "stage", "type": "nominal", "title": "stage"},
    },
}


def _status_body(job: Job, registry: JobRegistry) -> None:
    if job.state == QUEUED:
        pos = registry.queue_position(job)
        st.write(f"Waiting for the device — position {pos} in the queue." if pos else "Starting…")
    st.progress(job.fraction(), text=job.describe())
    losses = [(r.get("stage"), r.get("epoch"), r.get("loss")) for r in list(job.history)
              if isinstance(r.get("loss"), (int, float)) and r.get("stage") in ("train", "retrain", "unlearn")]
    if losses:
        frame = pd.DataFrame(losses, columns=["stage", "epoch", "loss"])
        frame = frame.drop_duplicates(["stage", "epoch"], keep="last")
        st.vega_lite_chart(frame, LOSS_CHART, width="stretch")
    st.caption(f"{job.elapsed_s:.1f} s elapsed")


def job_panel(prefix: str, *, on_done: Callable[[Job], None]) -> None:
    """Show the page's current job: a polling status while it runs, ``on_done(job)`` once it has finished."""
    st.session_state["_panel"] = prefix  # the heartbeat watches this page's job for a missed transition
    detached = st.session_state.pop(_k(prefix, "detached"), None)
    if detached is not None:
        st.info(f"Stopped waiting for “{detached}”: another open page is waiting for the same run, so it keeps "
                "running for them (press Run again to rejoin it).", icon="⏹️")
    job = current_job(prefix)
    if job is None:
        return
    if job.done:
        st.session_state[_k(prefix, "shown")] = job.id
    if job.state == DONE:
        on_done(job)
        return
    if job.state == FAILED:
        st.error(job.error or "the job failed", icon="🚫")
        return
    if job.state == CANCELLED:
        st.info(f"The run was {job.describe()}." if job.cancel_reason else "The run was cancelled.", icon="⏹️")
        return
    _poller(prefix)


@st.fragment(run_every=POLL_SECONDS)
def _poller(prefix: str) -> None:
    registry = get_registry()
    job = current_job(prefix)
    if job is None:
        return
    registry.heartbeat(session_id(), keys=[job.key])  # this page still waits (rejoins if its watcher timed out)
    if job.done:
        st.rerun(scope="app")
        return
    with st.status(f"Running: {job.label}", state="running", expanded=True):
        _status_body(job, registry)
        if st.button("Cancel", key=_k(prefix, "cancel"), icon="⏹️"):
            if not registry.cancel(job.key, watcher=session_id()):
                # another session still waits for this shared job: it keeps running for them; we stop watching
                st.session_state.pop(_k(prefix, "job"), None)
                st.session_state[_k(prefix, "detached")] = job.label
            st.rerun(scope="app")


# ------------------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        return f"{value:.{digits}g}"
    return str(value)


def accuracy_table(card: Mapping[str, Any]) -> pd.DataFrame:
    """Accuracy (and loss) of the original, retrained and unlearned models on forget, retain and test (numbers).

    A method that reports its noise-free estimate (certified Newton) adds the row "unlearned before noise", so the
    cost of the certificate's noise is visible next to the step itself. :func:`accuracy_display` formats it.
    """
    rows = []
    for name in ("original", "retrained", "unlearned"):
        m = (card.get("models") or {}).get(name)
        if m is None:
            continue
        rows.append({
            "model": name,
            "acc forget": m.get("acc_forget"), "acc retain": m.get("acc_retain"), "acc test": m.get("acc_test"),
            "loss forget": m.get("loss_forget"), "loss retain": m.get("loss_retain"), "loss test": m.get("loss_test"),
        })
    noiseless = plots.noiseless_accuracies(card)
    if rows and noiseless is not None:
        rows.insert(len(rows) - 1, {"model": "unlearned before noise",
                                    **{f"acc {s}": value for s, value in noiseless.items()}})
    columns = ["acc forget", "acc retain", "acc test", "loss forget", "loss retain", "loss test"]
    return pd.DataFrame(rows, columns=["model", *columns]).set_index("model").astype(float)


def fmt_accuracy(value: Any) -> str:
    """An accuracy as a percentage (``—`` when missing)."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return f"{100 * value:.1f} %"


def fmt_loss(value: Any) -> str:
    """A loss with 3 significant digits; above 1,000 only "> 1,000": a destroyed model's cross-entropy reaches
    10²¹, a number that says nothing more than "destroyed" and reads as a bug."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return "> 1,000" if value > 1000 else f"{value:.3g}"


def accuracy_display(table: pd.DataFrame) -> Any:
    """:func:`accuracy_table` for a report: accuracies in %, losses readable, missing values as ``—`` (never
    "None", never 3.15e+21), as a pandas Styler (the HTML report)."""
    formats = {c: (fmt_accuracy if c.startswith("acc") else fmt_loss) for c in table.columns}
    return table.style.format(formats)


def accuracy_frame(card: Mapping[str, Any]) -> pd.DataFrame:
    """:func:`accuracy_table` for a page: accuracies stay numbers (shown in % by :func:`accuracy_dataframe`,
    sortable, read by the tests), losses become text ("0.157", "> 1,000", "—"). Why not the Styler of
    :func:`accuracy_display`: ``st.dataframe`` showed a missing value as "None" and a destroyed model's loss as
    6.5e+22 whatever the Styler's display value said."""
    table = accuracy_table(card)
    shown = table.copy()
    for column in table.columns:
        if column.startswith("loss"):
            shown[column] = [fmt_loss(v) for v in table[column]]
    return shown


def accuracy_dataframe(card: Mapping[str, Any]) -> None:
    """The accuracy table on a page (:func:`accuracy_frame`, accuracies in %)."""
    shown = accuracy_frame(card)
    config = {c: st.column_config.NumberColumn(c, format="percent") for c in shown.columns if c.startswith("acc")}
    st.dataframe(shown, column_config=config, width="stretch")


#: How each certificate status is drawn: Streamlit's box, its icon and the badge colour (status → style).
STATUS_STYLE = {
    CERTIFIED: (st.success, ":material/verified:", "green"),
    UNDER_ASSUMPTIONS: (st.info, ":material/rule:", "orange"),
    NOT_CERTIFIED: (st.warning, ":material/gpp_bad:", "red"),
}
#: The badge colour of each constant tag.
TAG_COLOUR = {"bound": "green", "estimate": "orange", "assumption": "violet"}


def status_badge(status: str | None) -> str:
    """A coloured Markdown badge for a certificate status (``—`` when there is none)."""
    if not status:
        return "—"
    return f":{STATUS_STYLE.get(status, STATUS_STYLE[NOT_CERTIFIED])[2]}-badge[{status}]"


#: How each verdict tone is drawn: Streamlit's box and its icon (the colour follows the verdict, not the certificate).
VERDICT_STYLE = {
    "success": (st.success, ":material/check_circle:"),
    "info": (st.info, ":material/info:"),
    "warning": (st.warning, ":material/warning:"),
    "error": (st.error, ":material/cancel:"),
}
#: The icon in front of each answer, by the answer's own tone.
ANSWER_ICON = {"success": ":green[:material/check_circle:]", "info": ":blue[:material/info:]",
               "warning": ":orange[:material/warning:]", "error": ":red[:material/cancel:]"}


def verdict_box(card: Mapping[str, Any]) -> Verdict | None:
    """The verdict at the top of a result: a headline, then "Like retraining? Certified? Cost?" in a few words each
    (:func:`unlearn_core.verdict.verdict_from_card`), the numbers behind them in an expander, the rules stated."""
    verdict = verdict_from_card(card)
    if verdict is None:
        return None
    box, icon = VERDICT_STYLE[verdict.tone]
    lines = "\n".join(f"- {ANSWER_ICON[a.tone]} **{a.question}** {a.short}" for a in verdict.answers)
    box(f"**{verdict.headline}**\n\n{lines}", icon=icon)
    with st.expander("Why: the numbers behind the verdict", icon=":material/help:"):
        for a in verdict.answers:
            st.markdown(f"**{a.question}** {a.detail}")
        st.caption(f"How the verdict is decided — {verdict.rules}")
    return verdict


def certificate_card(card: Mapping[str, Any]) -> None:
    """The run's certificate as the engine computed it — status, the guarantee, every condition and constant.

    Nothing here decides the status: it is :class:`~unlearn_core.certificate.Certificate`'s, computed by
    ``certificate_status`` from the conditions and the constants' tags.
    """
    family = card.get("method", {}).get("family")
    with st.container(border=True):
        st.markdown("**Certificate**")
        if family == "oracle":
            st.markdown(":blue-badge[exact unlearning] Retrained from scratch on the retain set: the model never saw "
                        "the forget set, so no certificate is needed.")
            return
        cert = certificate_from_card(dict(card))
        if cert is None:
            label = "approximate (uncertified)" if family == "approximate" else f"{family} (uncertified)"
            st.markdown(f":orange-badge[{label}] This method carries no (ε, δ) certificate: no Δ, no σ. Judge it "
                        "by its distance to the retrained model and the MIA below.")
            return
        box, icon, _ = STATUS_STYLE[cert.status]
        soft = cert.soft_constants()
        if cert.status == NOT_CERTIFIED:
            failing = cert.failing()
            first = failing[0]
            words = "not certified by the bound" if first.name == "noise" else "not certified"
            box(f"**{words}** — {first.statement} fails: {first.value} (needs {first.requirement})."
                + (f" **Fix:** {first.fix}." if first.fix else "")
                + (f" ({len(failing) - 1} more condition(s) fail: see below.)" if len(failing) > 1 else ""),
                icon=icon)
        else:
            box(f"**{cert.status}** at (ε, δ) = ({_fmt(cert.epsilon)}, {_fmt(cert.delta_guaranteed)})"
                + (f" — given {', '.join(f'{c.name} ({c.tag})' for c in soft)}" if soft else
                   " — every condition checked, every constant a proven bound"), icon=icon)
        if cert.delta_guaranteed != cert.delta:
            st.caption(f"Asked for δ = {_fmt(cert.delta)}; guaranteed δ = {_fmt(cert.delta_guaranteed)} "
                       "(δ + ρ: the LiSSA lemma holds with probability 1 − ρ).")
        c1, c2 = st.columns(2)
        c3, c4 = st.columns(2)
        if cert.sensitivity is not None:
            c1.metric("Δ (sensitivity bound)", _fmt(cert.sensitivity, 3),
                      help="the bound on the distance the noise must hide; ∞ when a hypothesis of the bound fails")
        else:
            c1.metric("Δ (sensitivity bound)", "n/a", help="this guarantee has no single sensitivity: the noise is "
                      "added at every step (privacy amplification by iteration)")
        c2.metric("σ required", _fmt(cert.sigma_required, 3), help=f"accountant: {cert.accountant}")
        c3.metric("σ used", _fmt(cert.sigma_used, 3))
        c4.metric("ε certified", _fmt(cert.epsilon_certified, 3),
                  help="the ε that σ used certifies at δ, by the tightest valid accountant")
        if cert.sigma_required_by:
            st.caption("σ required by accountant: " + ", ".join(f"{k} {_fmt(v)}"
                                                                  for k, v in cert.sigma_required_by.items()))
        if cert.sensitivity_terms:
            st.caption("Δ terms: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in cert.sensitivity_terms.items()))
        st.markdown("**Conditions of the theorem, checked on this run**")
        st.markdown("\n".join(
            f"- {':material/check_circle:' if c.holds else ':red[:material/cancel:]'} {c.statement}: {c.value} "
            f"(needs {c.requirement})" + ("" if c.holds or not c.fix else f" — *fix:* {c.fix}")
            for c in cert.conditions))
        if cert.constants:
            st.markdown("**Constants of the bound**", help="bound: proven, exact or enforced by the algorithm; "
                        "estimate: measured, possibly optimistic; assumption: set by the user and taken on trust")
            st.markdown("\n".join(
                f"- {c.name} = {_fmt(c.value)} :{TAG_COLOUR.get(c.tag, 'gray')}-badge[{c.tag}] {c.how}"
                for c in cert.constants))
        for note in cert.notes:
            st.caption(f"• {note}")


def headline_metrics(card: Mapping[str, Any]) -> None:
    """Distance to the retrained model and unlearning vs retraining time, as metrics."""
    dist = card.get("distance", {})
    timing = card.get("timing_s", {})
    c1, c2 = st.columns(2)
    c3, c4 = st.columns(2)
    c1.metric("‖w_unlearned − w_retrained‖", _fmt(dist.get("unlearned_to_retrained"), 3),
              help="ℓ2 distance over trainable parameters; closer to 0 is better. The original model is at "
                   f"{_fmt(dist.get('original_to_retrained'))}.")
    c2.metric("‖w_original − w_retrained‖", _fmt(dist.get("original_to_retrained"), 3),
              help="how far unlearning has to move the model")
    unlearn_s, retrain_s = timing.get("unlearn"), timing.get("retrain")
    c3.metric("unlearning time", f"{unlearn_s:.2f} s" if unlearn_s is not None else "—")
    speed = (retrain_s / unlearn_s) if unlearn_s and retrain_s else None
    if speed is None:
        verdict = None
    elif speed >= 1:
        verdict = f"unlearning is {speed:.1f}× faster"
    else:
        verdict = f"unlearning is {1 / speed:.1f}× slower"
    c4.metric("retraining time", f"{retrain_s:.2f} s" if retrain_s is not None else "—", delta=verdict,
              delta_color="off")
    ratio = newton_step_ratio(card)
    if ratio is not None:
        c5, c6 = st.columns(2)
        closes = (f"the step closes {100 * (1 - ratio):.0f} %" if ratio < 1
                  else "no closer than the original")
        c5.metric(
            "‖w̃ − w̃*‖ / ‖w* − w̃*‖ (noise-free step)", _fmt(ratio, 3), delta=closes, delta_color="off",
            help="The noise-free Newton estimate w̃ (before the certificate's noise) measured against the retrained "
                 "model w̃*, as a fraction of the original model w*'s distance to it: 0 = it lands on the retrained "
                 "model, 1 = no closer than the original, above 1 = it moved away. One Newton step lands on the "
                 "retrained model only when both models are minimisers, e.g. trained by L-BFGS with a gradient "
                 "tolerance (the Newton ≈ retrain preset); models trained by a few epochs of Adam are not.",
        )
        retrained = (card.get("training") or {}).get("retrained") or {}
        if retrained.get("grad_norm") is not None:
            tol = retrained.get("grad_tol")
            verdict = None if tol is None else (f"≤ tolerance {tol:g}: a minimiser" if retrained.get("converged")
                                                else f"> tolerance {tol:g}: not converged")
            c6.metric("retrained model's ‖∇(L + wd/2‖w‖²)‖", _fmt(retrained["grad_norm"], 3), delta=verdict,
                      delta_color="off", help=retrained.get("stop_reason"))
    st.caption(f"Device: **{card.get('device', '?')}** · cached models: "
               + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in (card.get("cached") or {}).items()))


def newton_step_ratio(card: Mapping[str, Any]) -> float | None:
    """‖w̃ − w̃*‖ / ‖w* − w̃*‖: the noise-free estimate's distance to the retrained model (``diagnostics.approx_error``)
    over the original's (``distance.original_to_retrained``); ``None`` unless both are there and the latter > 0."""
    approx = (card.get("diagnostics") or {}).get("approx_error")
    base = (card.get("distance") or {}).get("original_to_retrained")
    if not isinstance(approx, (int, float)) or not isinstance(base, (int, float)) or not base > 0:
        return None
    return float(approx) / float(base)


# ------------------------------------------------------------------------------------------------------------
# Downloads
# ------------------------------------------------------------------------------------------------------------


def html_report(title: str, card: Mapping[str, Any], figures: Mapping[str, Any]) -> str:
    """A self-contained HTML report: the run card as tables plus the interactive figures (no Kaleido)."""
    # Everything from the card is escaped: a card is data (a label, a forget spec, a note), never markup.
    safe_title = html.escape(title)
    parts = [f"<html><head><meta charset='utf-8'><title>{safe_title}</title></head><body>", f"<h1>{safe_title}</h1>"]
    verdict = verdict_from_card(card)
    if verdict is not None:
        parts.append("<h2>Verdict</h2><p><b>" + html.escape(verdict.headline) + "</b></p><ul>"
                     + "".join(f"<li><b>{html.escape(a.question)}</b> {html.escape(a.detail)}</li>"
                               for a in verdict.answers)
                     + "</ul><p><i>" + html.escape(verdict.rules) + "</i></p>")
    if card.get("models"):
        parts.append("<h2>Accuracy</h2>" + accuracy_display(accuracy_table(card)).to_html())
    cert = certificate_from_card(dict(card)) if "certificate" in card else None
    if cert is not None:
        parts.append("<h2>Certificate</h2><p><b>" + html.escape(cert.headline()) + "</b></p>")
        parts.append(pd.DataFrame([{"holds": "yes" if c.holds else "NO", "condition": c.statement, "this run": c.value,
                                    "needs": c.requirement, "fix": "" if c.holds else c.fix}
                                   for c in cert.conditions]).to_html(index=False))
        parts.append(pd.DataFrame([{"constant": c.name, "value": c.value, "tag": c.tag, "how": c.how}
                                   for c in cert.constants]).to_html(index=False))
    first = True
    for name, fig in figures.items():
        parts.append(f"<h2>{html.escape(str(name))}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs="cdn" if not first else True))
        first = False
    card_text = html.escape(json.dumps(card, indent=2, default=str))
    parts.append(f"<h2>Run card</h2><pre>{card_text}</pre></body></html>")
    return "\n".join(parts)


def _card_buttons(prefix: str, c_json: Any, c_html: Any, card: Mapping[str, Any], *, figures: Mapping[str, Any],
                  name: str, title: str, json_label: str) -> None:
    """The JSON card and the HTML report (with the figures) buttons that every result offers."""
    c_json.download_button(json_label, data=lambda: json.dumps(card, indent=2, default=str),
                           file_name=f"{name}-card.json", mime="application/json", on_click="ignore",
                           key=_k(prefix, "dl.json"), icon="🧾")
    c_html.download_button("HTML report", data=lambda: html_report(title, card, figures),
                           file_name=f"{name}-report.html", mime="text/html", on_click="ignore",
                           key=_k(prefix, "dl.html"), icon="📊")


def downloads(prefix: str, card: Mapping[str, Any], *, figures: Mapping[str, Any], weights: Callable[[], bytes] | None,
              name: str) -> None:
    """CSV of the results, the JSON run card, an HTML report with the figures, and the unlearned weights."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    c1, c2, c3, c4 = st.columns(4)
    rows = [card_row(c) for c in card["runs"]] if "runs" in card else [card_row(dict(card))]
    c1.download_button("Results CSV", data=lambda: rows_to_csv(rows), file_name=f"{name}.csv",
                       mime="text/csv", on_click="ignore", key=_k(prefix, "dl.csv"), icon="📄")
    _card_buttons(prefix, c2, c3, card, figures=figures, name=name, json_label="JSON run card",
                  title=f"unlearn-explorer: {name} ({stamp})")
    if weights is not None:
        c4.download_button("Unlearned weights", data=weights, file_name=f"{name}-unlearned.pt",
                           mime="application/octet-stream", on_click="ignore", key=_k(prefix, "dl.pt"), icon="💾")


def load_weights_bytes(run_id: str) -> bytes:
    stored = get_store().get(run_id)
    return stored.weights or b""


def engine_error(exc: BaseException) -> None:
    """Engine errors appear as one ``st.error`` line, never a traceback."""
    st.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, icon="🚫")


# ------------------------------------------------------------------------------------------------------------
# Experiments (Compare, Sequential, Sensitivity): unlearn_core.experiments in the background
# ------------------------------------------------------------------------------------------------------------


def seeds_widget(prefix: str) -> int:
    """How many seeds to run (each seed trains its own original and retrained models once, then caches them)."""
    seed_once(_k(prefix, "nseeds"), 1)
    return int(st.number_input("Seeds", min_value=1, max_value=10, step=1, key=_k(prefix, "nseeds"),
                               help="Seeds s, s+1, … (s = the training seed): each trains its own models; tables "
                                    "and charts show the mean (± sd) over seeds."))


def submit_or_reuse(prefix: str, key: str, make_task: Callable[[], Any], *, label: str) -> None:
    """Reuse the stored run with this configuration hash (nothing is recomputed), else start ``make_task()``."""
    stored = get_store().find(key)
    ss = st.session_state
    if stored is not None:
        ss[_k(prefix, "job")] = None
        ss[_k(prefix, "stored")] = stored.id
        return
    ss[_k(prefix, "stored")] = None
    submit(prefix, key, make_task(), label=label)


def stored_or_job(prefix: str, *, show_stored: Callable[[Any], None], on_done: Callable[[Job], None]) -> None:
    """The page's result: the reused stored run (``show_stored(stored)``, without weights), else its job panel."""
    ss = st.session_state
    key = ss.get(_k(prefix, "job"))
    if key and get_registry().get(key) is None:
        # The registry no longer has the page's job (it keeps 32 finished ones; a restart empties it): a job that
        # finished saved its run, so show that rather than nothing.
        found = get_store().find(key)
        ss[_k(prefix, "job")] = None
        if found is not None:
            ss[_k(prefix, "stored")] = found.id
    stored_id = ss.get(_k(prefix, "stored"))
    if stored_id:
        try:
            stored = get_store().get(stored_id, with_weights=False)
        except ConfigError:  # deleted on the Runs page meanwhile
            ss[_k(prefix, "stored")] = None
        else:
            show_stored(stored)
            return
    job_panel(prefix, on_done=on_done)


def submit_experiment(prefix: str, kind: str, base: Any, *, n_seeds: int, label: str, **options: Any) -> None:
    """Reuse a stored experiment with this exact configuration, else start it in the background.

    It runs over ``n_seeds`` consecutive seeds from the configuration's own.
    """
    from unlearn_core.jobs import experiment_task, job_key

    seeds = [base.seed + i for i in range(int(n_seeds))]
    # The executor changes where the cells run, never the rows: it is not part of the key.
    key = job_key({"page": kind, "config": base.to_json(), "seeds": seeds, "options": options})
    executor = configured_executor()
    submit_or_reuse(
        prefix, key,
        lambda: experiment_task(kind, base, seeds=seeds, key=key, store=get_store(), label=label,
                                executor=executor, **options),
        label=f"{kind}: {label} on {base.dataset}/{base.model}, {len(seeds)} seed(s)",
    )


def configured_executor() -> Any:
    """The executor an operator configured (``UNLEARN_EXECUTOR`` & co., no widget), or ``None`` (serial).

    A bad setting stops the page with one ``st.error`` line.
    """
    from unlearn_core.executors import executor_from_env

    try:
        return executor_from_env()
    except ConfigError as exc:
        engine_error(exc)
        st.stop()


def executor_caption() -> None:
    """Say where the experiment's cells run — only when an operator configured an executor."""
    executor = configured_executor()
    if executor is not None:
        st.caption(f"Cells run on **{executor.describe()}** (set by `UNLEARN_EXECUTOR`); results are the same as "
                   "a serial run's.")


def seed_params_once(prefix: str, method: str, values: Mapping[str, Any]) -> None:
    """Preset some of a method's widgets on the page's first visit in a session (later, a user's edit is kept)."""
    flag = _k(prefix, f"_seeded.{method}")
    if st.session_state.get(flag):
        return
    by_name = {p.name: p for p in get_unlearner(method).schema}
    for name, value in values.items():
        if name in by_name:
            _seed_param(prefix, method, by_name[name], value)
    st.session_state[flag] = True


def experiment_panel(prefix: str, render: Callable[[pd.DataFrame, dict[str, Any], str | None], None]) -> None:
    """The page's experiment result: a reused stored one, or the background job (polled) and then its table."""

    def show_stored(stored: Any) -> None:
        st.info(f"Reused the stored experiment {stored.id} with this exact configuration (nothing was "
                "recomputed). Delete it on the Runs page to recompute.", icon="♻️")
        exp = stored.card["experiment"]
        render(pd.DataFrame(exp["rows"], columns=exp["columns"]), stored.card, stored.id)

    def done(job: Job) -> None:
        render(job.result["table"], job.result["card"], job.result.get("run_id"))

    executor_caption()
    stored_or_job(prefix, show_stored=show_stored, on_done=done)


def mean_table(df: pd.DataFrame, *, by: str, columns: Mapping[str, str]) -> pd.DataFrame:
    """Mean over seeds of ``columns`` (name → display name) per ``by`` group, in first-seen order."""
    present = [c for c in columns if c in df]
    data = df[[by, *present]].copy()
    agg: dict[str, Any] = {}
    for c in present:
        if c == "status":
            agg[c] = _worst_status
        elif pd.api.types.is_numeric_dtype(data[c]) or data[c].map(lambda v: v is None or isinstance(
                v, (int, float))).all():
            data[c] = pd.to_numeric(data[c], errors="coerce")
            agg[c] = "mean"
        else:
            agg[c] = "first"  # labels such as the method's family
    out = data.groupby(by, sort=False).agg(agg)
    return out.rename(columns=dict(columns))


def _worst_status(values: pd.Series) -> str:
    """The weakest certificate status over seeds (one uncertified seed makes the row uncertified)."""
    known = [v for v in values if isinstance(v, str)]
    if not known:
        return "—"
    return max(known, key=lambda v: STATUSES.index(v) if v in STATUSES else len(STATUSES))


def experiment_results(prefix: str, kind: str, df: pd.DataFrame, card: Mapping[str, Any], *, name: str) -> None:
    """An experiment's figures (those its rows can fill: ``plots.experiment_figures``) and its downloads.

    The experiment pages and the Runs page draw a result the same way, so a stored run looks as it did live.
    """
    figures = plots.experiment_figures(kind, df)
    for title, fig in figures.items():
        st.plotly_chart(fig, width="stretch", key=_k(prefix, f"fig.{title}"))
    experiment_downloads(prefix, df, card, figures=figures, name=name)


def experiment_downloads(prefix: str, df: pd.DataFrame, card: Mapping[str, Any], *, figures: Mapping[str, Any],
                         name: str) -> None:
    """The experiment's tidy rows as CSV, its JSON card, and an HTML report with the figures."""
    c1, c2, c3 = st.columns(3)
    c1.download_button("Results CSV (every seed)", data=lambda: df.to_csv(index=False), file_name=f"{name}.csv",
                       mime="text/csv", on_click="ignore", key=_k(prefix, "dl.csv"), icon="📄")
    _card_buttons(prefix, c2, c3, card, figures=figures, name=name, json_label="JSON card",
                  title=f"unlearn-explorer: {name}")
