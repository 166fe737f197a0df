"""The configuration widgets: state ↔ widgets, generated from the run configuration's schema; the method's
hyperparameter widgets, generated from its :class:`~unlearn_core.unlearners.HyperParam` schema; the presets row.

URL → session state → widgets → :class:`~unlearn_core.service.ui_state.UIConfig` → URL. Every field of the run
configuration (:func:`unlearn_core.settings.run_settings`) with a widget is drawn by :func:`config_widgets`: the
``basic`` ones in the setup row (dataset, model, forget set, method), the ``advanced`` ones in the "Details"
expander at their declared row and column. The forget set and the method are drawn by hand (``widget="custom"``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from dashboard.common import FAMILY_BADGE, engine_error, param_key, seed_once, state_key
from unlearn_core.config import Setting
from unlearn_core.data import DATASETS, missing_files
from unlearn_core.errors import ConfigError
from unlearn_core.forget import MEMORISATION_LEVELS, parse_forget_spec
from unlearn_core.forget_protocols import DEFAULT_CLUSTERS, MAX_CLUSTERS
from unlearn_core.paths import data_dir as default_data_dir
from unlearn_core.pipeline import validate_config
from unlearn_core.service import ui_state
from unlearn_core.service.text import plain
from unlearn_core.unlearners import HyperParam, get_unlearner, list_unlearners, resolve_params


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
    key = param_key(prefix, method, p.name)

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


def _widget_settings() -> list[Setting]:
    """The run configuration's fields that have a widget (the schema's ``widget`` is not ``None``)."""
    return [x for x in ui_state.ui_settings() if x.widget is not None]


def _seed_setting(prefix: str, x: Setting, value: Any) -> None:
    """Write one field's value into its widget key(s): a number, a choice, the text of a tuple, or for an optional
    number its checkbox (``use_…``) and the number (its placeholder while off)."""
    ss = st.session_state
    key = state_key(prefix, x.widget_key)
    if x.toggle is not None:
        ss[state_key(prefix, x.toggle_key or f"use_{x.widget_key}")] = value is not None
        value = x.placeholder if value is None else value
    if x.widget == "text":
        ss[key] = x.format(value)
    elif x.widget == "number":
        ss[key] = int(value) if x.type is int else float(value)
    else:
        ss[key] = value


def _seed_forget(prefix: str, forget: str) -> None:
    """The forget set's widgets (kind, then amount / classes / class and fraction / indices) from its spec."""
    ss = st.session_state
    spec = parse_forget_spec(forget)
    ss[state_key(prefix, "fkind")] = spec.kind
    ss[state_key(prefix, "famount")] = float(spec.fraction if spec.fraction is not None else (spec.count or 0.1))
    ss[state_key(prefix, "fclasses")] = list(spec.classes) if spec.kind == "class" else [0]
    ss[state_key(prefix, "fclass")] = spec.classes[0] if spec.kind == "class-fraction" else 0
    ss[state_key(prefix, "ffrac")] = float(spec.fraction) if spec.kind == "class-fraction" else 0.5
    ss[state_key(prefix, "findices")] = ",".join(map(str, spec.indices)) if spec.kind == "indices" else "0,1,2"
    sub = spec.kind == "subclass"
    ss[state_key(prefix, "fsubclass")] = spec.classes[0] if sub else 0
    ss[state_key(prefix, "fcluster")] = int(spec.cluster) if sub else 0
    ss[state_key(prefix, "fclusters")] = int(spec.clusters) if sub else DEFAULT_CLUSTERS
    mem = spec.kind == "memorised"
    ss[state_key(prefix, "flevel")] = spec.level if mem else "high"
    ss[state_key(prefix, "fmemamount")] = (float(spec.fraction if spec.fraction is not None else spec.count)
                                           if mem else 0.05)


def seed_widgets(prefix: str, cfg: Any) -> None:
    """Write ``cfg`` into the widget keys of page ``prefix`` (on first load, and for the preset buttons)."""
    for x in _widget_settings():
        if x.widget != "custom":
            _seed_setting(prefix, x, getattr(cfg, x.name))
    _seed_forget(prefix, cfg.forget)
    st.session_state[state_key(prefix, "method")] = cfg.method
    params = ui_state.full_params(cfg)
    for p in get_unlearner(cfg.method).schema:
        _seed_param(prefix, cfg.method, p, params[p.name])


def _config_widget_keys(prefix: str) -> list[str]:
    """The keys of page ``prefix``'s setup widgets (the schema's, with their on/off boxes, the forget set's and
    the method's) and of every hyperparameter widget it holds."""
    keys = []
    for x in _widget_settings():
        if x.widget != "custom":
            keys.append(state_key(prefix, x.widget_key))
            if x.toggle is not None:
                keys.append(state_key(prefix, x.toggle_key or f"use_{x.widget_key}"))
    keys += [state_key(prefix, n) for n in ("fkind", "famount", "fclasses", "fclass", "ffrac", "findices", "method",
                                            "fsubclass", "fcluster", "fclusters", "flevel", "fmemamount")]
    return keys + [k for k in list(st.session_state.keys()) if k.startswith(f"{prefix}.p.")]


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
    for key in _config_widget_keys(prefix):
        if key in ss:
            ss[key] = ss[key]


def init_page(prefix: str, *, extra_fields: Mapping[str, Callable[[str], Any]] | None = None,
              defaults: ui_state.PageDefaults | None = None) -> dict[str, Any]:
    """First visit of a page in a session: restore the configuration from the URL (deep link).

    ``?preset=<slug>`` (e.g. ``?preset=quick-demo``, the links on the Learn page) loads a preset first; the other
    parameters of the URL then override it. Without a preset or a ``method`` in the URL, an experiment page starts
    from its own ``defaults`` (:data:`unlearn_core.service.ui_state.PAGE_DEFAULTS`: the settings whose first run
    shows what the page is for). Bad parameters become one-line warnings (kept until the next Run) and fall back to
    defaults. Returns the page-specific extras: the URL's over the page's defaults (on every visit).
    """
    ss = st.session_state
    extras: dict[str, Any] = {}
    if not ss.get(state_key(prefix, "_init")):
        query = st.query_params.to_dict()
        base = ss.get("shared_config") or ui_state.UIConfig(method=ui_state.default_method())
        warnings: list[str] = []
        if "preset" in query:
            raw = query.pop("preset")
            try:
                base = preset_config(prefix, ui_state.parse_preset(raw[-1] if isinstance(raw, list) else str(raw)))
            except ConfigError as exc:
                warnings.append(str(exc))
        elif defaults is not None and "method" not in query:
            base = defaults.apply(base)
        cfg, extras, parsed = ui_state.from_query(query, base=base, extra_fields=extra_fields)
        if defaults is not None:
            extras = {**defaults.extras, **extras}
        warnings += parsed
        seed_widgets(prefix, cfg)
        ss[state_key(prefix, "_warnings")] = warnings
        ss[state_key(prefix, "_extras")] = extras
        ss[state_key(prefix, "_init")] = True
    elif state_key(prefix, "dataset") not in ss:
        # Streamlit dropped this page's widget state: it does so for every page the session leaves (a page switch),
        # and it has been seen to do so mid-run. The widgets would come back at their defaults (epochs 0, lr 1e-6, an
        # empty hidden width...), a different and often invalid configuration that stops the page before its job
        # panel — the results of a finished job then never appear. Restore the last configuration the page read.
        seed_widgets(prefix, ss.get(state_key(prefix, "_cfg")) or ss.get("shared_config")
                     or ui_state.UIConfig(method=ui_state.default_method()))
    elif ss.get("_previous_run_cut"):
        reassert_widgets(prefix)
    for line in ss.get(state_key(prefix, "_warnings"), []):  # text from the URL: shown as plain text, never markup
        st.warning(plain(line), icon=":material/warning:")
    return ss.get(state_key(prefix, "_extras"), {})


def preset_config(prefix: str, name: str) -> Any:
    """Preset ``name`` as this page uses it.

    Pages with their own method list (Compare, Sequential, Sensitivity) keep their method and take the preset's
    settings for it (:func:`unlearn_core.service.ui_state.preset_params`). On Sequential, requests chain from the
    noiseless estimate: with a certified σ (≈ 10⁶ for certified Newton on an MLP) a noised chain starts request 2
    from noise, where LiSSA diverges; the noiseless chain is the method's other documented mode.
    """
    cfg = ui_state.preset(name)
    method = st.session_state.get(state_key(prefix, "method"))
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
    st.session_state[state_key(prefix, "_warnings")] = []
    st.session_state[state_key(prefix, "_preset")] = name


#: The quick demo's button icon (Material Symbols: headless Chromium has no emoji font). The other presets have
#: none, so that all five fit in one row at 1024 px.
PRESET_ICONS = {ui_state.QUICK_DEMO: ":material/bolt:"}


def presets_row(prefix: str) -> None:
    """One button per preset, in a row at the top of the page (each tells one story; the tooltip says which)."""
    with st.container(horizontal=True, gap="xsmall", vertical_alignment="center"):
        st.markdown("**Try:**", width="content")
        for name, story in ui_state.PRESETS.items():
            st.button(name, key=state_key(prefix, f"preset.{name}"), help=story, on_click=apply_preset,
                      args=(prefix, name), icon=PRESET_ICONS.get(name), width="content")


def _forget_spec_from_widgets(prefix: str) -> str:
    ss = st.session_state
    kind = ss[state_key(prefix, "fkind")]
    if kind == "random":
        amount = float(ss[state_key(prefix, "famount")])
        return f"random:{int(amount)}" if amount >= 1 else f"random:{amount:g}"
    if kind == "class":
        classes = sorted(ss[state_key(prefix, "fclasses")]) or [0]
        return "class:" + ",".join(map(str, classes))
    if kind == "class-fraction":
        return f"class-fraction:{ss[state_key(prefix, 'fclass')]}:{float(ss[state_key(prefix, 'ffrac')]):g}"
    if kind == "subclass":
        clusters = int(ss[state_key(prefix, "fclusters")])
        tail = "" if clusters == DEFAULT_CLUSTERS else f":{clusters}"
        return f"subclass:{ss[state_key(prefix, 'fsubclass')]}:{int(ss[state_key(prefix, 'fcluster')])}{tail}"
    if kind == "memorised":
        amount = float(ss[state_key(prefix, "fmemamount")])
        text = f"{int(amount)}" if amount >= 1 else f"{amount:g}"
        return f"memorised:{ss[state_key(prefix, 'flevel')]}:{text}"
    return "indices:" + ss[state_key(prefix, "findices")].replace(" ", "")


FORGET_KINDS = {"random": "random points", "class": "whole classes", "class-fraction": "part of a class",
                "subclass": "a sub-class", "memorised": "memorisation", "indices": "given indices"}


def _help(x: Setting) -> str | None:
    return x.widget_help() if callable(x.widget_help) else x.widget_help


def _setting_widget(prefix: str, x: Setting) -> None:
    """One field's widget, as its schema declares it (inside the column it belongs to)."""
    key = state_key(prefix, x.widget_key)
    if x.toggle is not None:
        st.checkbox(x.toggle, key=state_key(prefix, x.toggle_key or f"use_{x.widget_key}"), help=x.toggle_help)
    if x.widget == "select":
        # The dataset picker says which datasets have no data on this machine, before anyone presses Run.
        label_of = _dataset_label if x.name == "dataset" else str
        st.selectbox(x.label, x.allowed_choices(), key=key, help=_help(x), format_func=label_of)
    elif x.widget == "text":
        st.text_input(x.label, key=key, help=_help(x))
    elif x.widget == "checkbox":
        st.checkbox(x.label, key=key, help=_help(x))
    elif x.widget == "number":
        # The bounds are the schema's (limits.py's), the URL parser's too: a deep-linked value is never clamped
        # silently. An open lower end (grad_tol > 0) starts the widget at 1e-12.
        low = x.low if not x.low_open else 1e-12
        kwargs: dict[str, Any] = {"min_value": None if low is None else (int(low) if x.type is int else float(low)),
                                  "max_value": None if x.high is None else (int(x.high) if x.type is int
                                                                            else float(x.high))}
        if x.step is not None:
            kwargs["step"] = int(x.step) if x.type is int else float(x.step)
        if x.type is float:
            kwargs["format"] = "%g"
        st.number_input(x.label, key=key, help=_help(x), **kwargs)


def _dataset_label(name: str) -> str:
    """A dataset's name in the picker, with "(no data on disk)" when its files are missing (issue 20: cifar10 and
    svhn were offered and failed only after Run, with a message that named a CLI flag)."""
    try:
        return f"{name} (no data on disk)" if missing_files(name) else name
    except ConfigError:
        return name


def missing_data_notice(dataset: str) -> bool:
    """Before Run: when ``dataset``'s files are not on this machine, say so and how to get them (one warning);
    returns whether they are missing."""
    try:
        missing = missing_files(dataset)
    except ConfigError:
        return False
    if not missing:
        return False
    st.warning(f"**{dataset}: no data on this machine** — {len(missing)} file(s) missing in `{default_data_dir()}` "
               f"(e.g. `{missing[0]}`), so a run would fail. Get them once with "
               f"`python -m unlearn_core train --dataset {dataset} --download` (needs internet), or copy them there "
               "in torchvision's layout (`UNLEARN_DATA_DIR` sets the folder; see the README's *Data, cache and "
               "offline use*). digits needs nothing.", icon=":material/cloud_off:")
    return True


def _forget_widgets(prefix: str, kind_col: Any, amount_col: Any) -> None:
    """The forget set's special shape: its kind, then the amount, classes, class and fraction, or indices."""
    ss = st.session_state
    num_classes = DATASETS[ss[state_key(prefix, "dataset")]].num_classes
    forget = next(x for x in ui_state.ui_settings() if x.name == "forget")
    kind_col.selectbox(forget.label, list(FORGET_KINDS), key=state_key(prefix, "fkind"), format_func=FORGET_KINDS.get,
                       help=_help(forget))
    kind = ss[state_key(prefix, "fkind")]
    with amount_col:
        if kind == "random":
            st.number_input("Fraction (< 1) or count (≥ 1)", min_value=0.0001, max_value=1e6, step=0.05,
                            format="%g", key=state_key(prefix, "famount"))
        elif kind == "class":
            if any(c >= num_classes for c in ss[state_key(prefix, "fclasses")]):
                ss[state_key(prefix, "fclasses")] = [0]
            st.multiselect("Classes", list(range(num_classes)), key=state_key(prefix, "fclasses"))
        elif kind == "class-fraction":
            if ss[state_key(prefix, "fclass")] >= num_classes:
                ss[state_key(prefix, "fclass")] = 0
            st.selectbox("Class", list(range(num_classes)), key=state_key(prefix, "fclass"))
            st.slider("Fraction of the class", 0.01, 0.99, key=state_key(prefix, "ffrac"))
        elif kind == "subclass":
            if ss[state_key(prefix, "fsubclass")] >= num_classes:
                ss[state_key(prefix, "fsubclass")] = 0
            st.selectbox("Class", list(range(num_classes)), key=state_key(prefix, "fsubclass"))
            a, b = st.columns(2)
            b.number_input("Clusters", min_value=2, max_value=MAX_CLUSTERS, step=1, key=state_key(prefix, "fclusters"),
                           help="The class is split into this many clusters by a seeded k-means of its inputs (the "
                                "forget-set seed); they are numbered by size, 0 = the largest.")
            if ss[state_key(prefix, "fcluster")] >= ss[state_key(prefix, "fclusters")]:
                ss[state_key(prefix, "fcluster")] = 0
            a.number_input("Cluster", min_value=0, max_value=int(ss[state_key(prefix, "fclusters")]) - 1, step=1,
                           key=state_key(prefix, "fcluster"), help="Which cluster is forgotten (0 = the largest).")
        elif kind == "memorised":
            st.radio("Memorisation", list(MEMORISATION_LEVELS), key=state_key(prefix, "flevel"), horizontal=True,
                     help="The training examples with the highest (or lowest) memorisation proxy: their exact "
                          "leave-one-out loss under a ridge-regression classifier (mislabelled, ambiguous or "
                          "atypical examples score high).")
            st.number_input("Fraction or count", min_value=0.0001, max_value=1e6, step=0.01, format="%g",
                            key=state_key(prefix, "fmemamount"),
                            help="A fraction of the training set (< 1) or a number of examples (≥ 1).")
        else:
            st.text_input("Indices (comma-separated)", key=state_key(prefix, "findices"))


def _method_widget(prefix: str, col: Any) -> None:
    ss = st.session_state
    names = ui_state.method_names()
    if ss.get(state_key(prefix, "method")) not in names:
        ss[state_key(prefix, "method")] = ui_state.default_method()
    families = {cls.name: cls for cls in list_unlearners()}
    method = next(x for x in ui_state.ui_settings() if x.name == "method")
    col.selectbox(method.label, names, key=state_key(prefix, "method"),
                  format_func=lambda n: f"{n} — {families[n].family}")
    cls = families[ss[state_key(prefix, "method")]]
    st.caption(f"{FAMILY_BADGE.get(cls.family, cls.family)} {cls.summary}", help=cls.paper)


def _setup_values(prefix: str) -> dict[str, Any]:
    """The setup row's values by name (what a Details widget's ``visible`` rule reads, e.g. the model)."""
    return {x.name: st.session_state.get(state_key(prefix, x.widget_key))
            for x in _widget_settings() if x.level == "basic"}


def config_widgets(prefix: str, *, method: bool = True) -> None:
    """The setup, generated from the run configuration's schema: the ``basic`` fields in one row (dataset, model,
    forget set, and the method); the ``advanced`` ones (widths, seeds, epochs, the training recipe) in a "Details"
    expander, at their declared row and column. Outside any form: changing them starts no work."""
    settings = _widget_settings()
    cols = st.columns([1, 1, 1.1, 1.2, 2.2] if method else [1, 1, 1.1, 1.2])
    for x in (x for x in settings if x.level == "basic"):
        if x.name == "forget":
            _forget_widgets(prefix, cols[x.column], cols[x.column + 1])
        elif x.name == "method":
            if method:
                _method_widget(prefix, cols[x.column])
        elif x.name != "params":  # the hyperparameters have their own widgets (param_widgets)
            with cols[x.column]:
                _setting_widget(prefix, x)
    values = _setup_values(prefix)
    missing_data_notice(st.session_state[state_key(prefix, "dataset")])
    with st.expander("Details: widths, seeds, epochs, training recipe", icon=":material/tune:"):
        for row in sorted({x.row for x in settings if x.level == "advanced"}):
            if row == 1:
                st.markdown("**Training recipe** — the same for the original model and the retrained oracle")
            cols = st.columns(4)
            for x in (x for x in settings if x.level == "advanced" and x.row == row):
                if x.visible is None or x.visible(values):
                    with cols[x.column]:
                        _setting_widget(prefix, x)


def method_param_tabs(prefix: str, methods: list[str], *, note: str = "") -> None:
    """Each method's hyperparameters (:func:`param_widgets`) in a tab of its own, under one heading (call inside a
    form). Tabs rather than expanders: each tab holds its own "Advanced" expander."""
    st.markdown("**Hyperparameters of each method**" + (f" — {note}" if note else ""))
    for tab, method in zip(st.tabs(methods), methods, strict=True):
        with tab:
            param_widgets(prefix, method)


def param_widgets(prefix: str, method: str, *, skip: tuple[str, ...] = (), columns: int = 3,
                  part: str = "all") -> None:
    """The method's hyperparameters as widgets, built from its schema (call inside a form).

    The ``basic`` ones (λ, ε, δ, iteration counts, the method's main knobs) come first with their human labels;
    the ``advanced`` ones wait in an "Advanced" expander. The widget keys carry the schema's names, which stay the
    names of the CLI, the JSON card and the URL (the label is display only). ``part``: ``"basic"`` or
    ``"advanced"`` draws one of the two (Explore puts Run between them, so that Run stays on a 1024 × 768 screen).
    """
    schema = [p for p in get_unlearner(method).schema if p.name not in skip]
    if not schema:
        if part != "advanced":
            st.caption("This method has no hyperparameters.")
        return
    basic = [p for p in schema if p.level == "basic"]
    advanced = [p for p in schema if p.level != "basic"]
    if part != "advanced":
        _param_grid(prefix, method, basic, columns)
    if advanced and part != "basic":
        with st.expander(f"Advanced: {len(advanced)} more", icon=":material/settings:"):
            _param_grid(prefix, method, advanced, columns)


def _param_grid(prefix: str, method: str, params: list[HyperParam], columns: int) -> None:
    cols: list[Any] = []
    for i, p in enumerate(params):
        key = param_key(prefix, method, p.name)
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
        key = param_key(prefix, method, p.name)
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


def _read_setting(prefix: str, x: Setting, values: Mapping[str, Any]) -> Any:
    """One field's value from its widget(s); a field whose widget is not shown (``visible``) keeps its default.

    Raises:
        ConfigError: a malformed text (e.g. hidden widths ``32-x``).
    """
    ss = st.session_state
    key = state_key(prefix, x.widget_key)
    if (x.visible is not None and not x.visible(values)) or key not in ss:
        return x.default
    if x.toggle is not None and not ss.get(state_key(prefix, x.toggle_key or f"use_{x.widget_key}")):
        return None
    value = ss[key]
    if x.widget == "text":
        return x.parse_text(value) if x.parse is not None else value
    if x.widget == "number":
        return int(value) if x.type is int else float(value)
    return value


def read_config(prefix: str, *, method: str | None = None) -> Any:
    """The page's widgets as a :class:`~unlearn_core.service.ui_state.UIConfig` (raises :class:`ConfigError` for a
    malformed value)."""
    ss = st.session_state
    method = method or ss.get(state_key(prefix, "method")) or ui_state.default_method()
    values = _setup_values(prefix)
    spec = _forget_spec_from_widgets(prefix)
    parse_forget_spec(spec)
    fields = {x.name: _read_setting(prefix, x, values) for x in _widget_settings() if x.widget != "custom"}
    cfg = ui_state.UIConfig(**fields, forget=spec, method=method, params=read_params(prefix, method))
    cfg = dataclasses.replace(cfg, params=ui_state.full_params(cfg))
    st.session_state["shared_config"] = cfg
    st.session_state[state_key(prefix, "_cfg")] = cfg  # not a widget key: survives what Streamlit drops (init_page)
    return cfg


def sync_url(cfg: Any, *, extra: Mapping[str, Any] | None = None) -> None:
    """Put the whole configuration into the URL so that the link reproduces it."""
    query = ui_state.to_query(cfg, extra=extra)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


def config_or_stop(prefix: str, *, method: str | None = None, extra: Mapping[str, Any] | None = None,
                   with_params: bool = True, skip_params: tuple[str, ...] = ()) -> Any:
    """Read the page's configuration and mirror it into the URL; a malformed value stops the page with st.error.

    ``with_params=False``: the URL leaves out ``p.<name>`` (Compare carries ``p.<method>.<name>`` in ``extra``);
    ``skip_params``: hyperparameters the page sets from its own settings (Sequential's ``requests``), left out of
    the URL so that it never carries two values for one setting (``p.requests=1`` beside ``requests=3``).
    """
    try:
        cfg = read_config(prefix, method=method)
    except ConfigError as exc:
        engine_error(exc)
        st.session_state["_config_invalid"] = True  # run_config_or_stop refuses to start anything with it
        last = st.session_state.get(state_key(prefix, "_cfg"))
        busy = st.session_state.get(state_key(prefix, "job")) or st.session_state.get(state_key(prefix, "stored"))
        if last is None or not busy:
            st.stop()
        # A job of this page is running or has finished: an invalid widget value must not hide its status or its
        # results, so the page goes on with the last valid configuration (the URL keeps it too).
        return last
    st.session_state["_config_invalid"] = False
    shown = {k: v for k, v in cfg.params.items() if k not in skip_params} if with_params else {}
    sync_url(dataclasses.replace(cfg, params=shown), extra=extra)
    return cfg


def run_config_or_stop(cfg: Any, **overrides: Any) -> tuple[Any, dict[str, Any]]:
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
    current = st.session_state.get(state_key(prefix, "method"))
    if current not in methods:
        if current is not None:
            line = (f"method={current!r} cannot be used here: {why} — using {methods[0]} (choose one of "
                    f"{', '.join(methods)})")
            st.session_state.setdefault(state_key(prefix, "_warnings"), []).append(line)
            st.warning(plain(line), icon=":material/warning:")
        st.session_state[state_key(prefix, "method")] = methods[0]
        seed_method_params(prefix, methods[0], {})
    config_widgets(prefix, method=False)
    return st.selectbox("Method", methods, key=state_key(prefix, "method"))


def seeds_widget(prefix: str) -> int:
    """How many seeds to run (each seed trains its own original and retrained models once, then caches them)."""
    seed_once(state_key(prefix, "nseeds"), 1)
    return int(st.number_input("Seeds", min_value=1, max_value=10, step=1, key=state_key(prefix, "nseeds"),
                               help="Seeds s, s+1, … (s = the training seed): each trains its own models; tables "
                                    "and charts show the mean (± sd) over seeds."))


def seed_params_once(prefix: str, method: str, values: Mapping[str, Any]) -> None:
    """Preset some of a method's widgets on the page's first visit in a session (later, a user's edit is kept)."""
    flag = state_key(prefix, f"_seeded.{method}")
    if st.session_state.get(flag):
        return
    by_name = {p.name: p for p in get_unlearner(method).schema}
    for name, value in values.items():
        if name in by_name:
            _seed_param(prefix, method, by_name[name], value)
    st.session_state[flag] = True
