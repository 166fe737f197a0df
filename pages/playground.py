"""Playground: delete points of a 2-D data set with a click and watch the original, retrained and unlearned decision
boundaries, the clouds of the certificate's noise, and a guessing game that makes ε tangible.

Thin: the state comes from :mod:`unlearn_core.playground.state` (the URL, parsed once), every number from
:mod:`unlearn_core.playground.engine` (through the registry and the pipeline's ``run_method``, so the certificate and
the verdict are Explore's), the figures from :mod:`unlearn_core.playground.figures`, and the certificate card and
verdict box from :mod:`dashboard.results`, as on Explore.

Layout (why): at 1024 × 768 the plot and the sliders, status and verdict beside it fit under the setup row; the game
and the details follow below.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import streamlit as st

from dashboard import common, results
from unlearn_core.errors import ConfigError
from unlearn_core.playground import data2d, engine, figures, game
from unlearn_core.playground import state as pstate
from unlearn_core.service.jobs import WARM_UP
from unlearn_core.unlearners import get_unlearner, list_unlearners

PREFIX = "playground"
STATE = f"{PREFIX}._state"
GAME = f"{PREFIX}._game"

common.require_router()
st.title("Playground")
st.caption("Click a point to delete it and watch what retraining does, what an unlearner does, and what the "
           "certificate's noise hides. To delete several, pick the lasso in the chart's toolbar and circle them (the "
           "hand tool returns to clicking); click a ✕ to restore a point.")

ss = st.session_state


# -- state: the URL once, then the session ------------------------------------------------------------------------

# Parsed on the first visit, and again when a link brings another query (a Learn link, a shared link opened in this
# session); otherwise the session's state is the truth and the URL follows it (written below).
incoming = st.query_params.to_dict()
if not ss.get(f"{PREFIX}._init") or (incoming and incoming != ss.get(f"{PREFIX}._query")):
    parsed, url_errors = pstate.from_query(incoming)
    ss[STATE] = parsed
    ss[f"{PREFIX}._url_errors"] = url_errors
    ss[f"{PREFIX}._url_state"] = parsed
    ss[f"{PREFIX}._init"] = True
    for name in ("dataset", "model", "seed", "method"):  # the setup widgets follow the link
        ss.pop(f"{PREFIX}.{name}", None)
    for name in [k for k in ss if str(k).startswith(f"{PREFIX}.p.")]:
        del ss[name]
state: pstate.PlaygroundState = ss[STATE]
if ss.get(f"{PREFIX}._url_errors") and state == ss.get(f"{PREFIX}._url_state"):
    for line in ss[f"{PREFIX}._url_errors"]:
        st.error(pstate.plain(line), icon=":material/error:")


# -- cached engine work (the engine stays streamlit-free) --------------------------------------------------------

@st.cache_resource(max_entries=8, show_spinner="Training the original model on all the points…")
def get_playground(dataset: str, seed: int, model: str) -> engine.Playground:
    """The original model per (data set, seed, model): trained once per server, shared by every session."""
    return engine.build_playground(dataset, seed=seed, model=model)


class _Memo:
    """A small thread-safe LRU of finished outcomes (the page asks it first, to skip the two-stage drawing)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.items: OrderedDict[tuple, engine.Outcome] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> engine.Outcome | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: tuple, value: engine.Outcome) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


@st.cache_resource(show_spinner=False)
def _memo() -> _Memo:
    return _Memo()


def _params_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, v) for k, v in params.items()))


# -- setup row ------------------------------------------------------------------------------------------------------

METHODS = [cls.name for cls in list_unlearners()]
FAMILY = {cls.name: cls.family for cls in list_unlearners()}


def _seed_widget(key: str, value: Any) -> None:
    if key not in ss:  # first run, or Streamlit dropped the widget's state when the session left the page
        ss[key] = value


_seed_widget(f"{PREFIX}.dataset", state.dataset)
_seed_widget(f"{PREFIX}.model", state.model)
_seed_widget(f"{PREFIX}.seed", state.seed)
_seed_widget(f"{PREFIX}.method", state.method)
c1, c2, c3, c4 = st.columns([2, 3, 1.2, 4])
c1.selectbox("Data set", list(data2d.DATASETS_2D), key=f"{PREFIX}.dataset",
             format_func=lambda n: data2d.DATASETS_2D[n].title,
             help="\n\n".join(f"**{d.title}**: {d.description}" for d in data2d.DATASETS_2D.values()))
c2.selectbox("Model", list(engine.MODELS_2D), key=f"{PREFIX}.model", format_func=lambda n: engine.MODELS_2D[n].title,
             help="Logistic regression is trained by L-BFGS to a minimiser (‖∇‖ ≤ 1e-5); the MLP by full-batch Adam. "
                  f"Both keep ‖w‖ ≤ C = {engine.NORM_BOUND:g}.")
c3.number_input("Seed", min_value=0, max_value=pstate.MAX_SEED, step=1, key=f"{PREFIX}.seed",
                help="Draws the data set and the models' initialisation.")
c4.selectbox("Method", METHODS, key=f"{PREFIX}.method", format_func=lambda n: f"{n} — {FAMILY[n]}",
             help="Every method of the registry: the certified ones with their real certificate, the approximate "
                  "and heuristic baselines, and retraining itself.")

new = state
if (ss[f"{PREFIX}.dataset"], int(ss[f"{PREFIX}.seed"])) != (state.dataset, state.seed):
    new = dataclasses.replace(new, dataset=ss[f"{PREFIX}.dataset"], seed=int(ss[f"{PREFIX}.seed"]), deleted=())
if ss[f"{PREFIX}.model"] != state.model:
    new = dataclasses.replace(new, model=ss[f"{PREFIX}.model"])
if ss[f"{PREFIX}.method"] != state.method:
    new = new.with_method(ss[f"{PREFIX}.method"])
state = new
ss[STATE] = state
unlearner = get_unlearner(state.method)
schema = {p.name: p for p in unlearner.schema}


# -- the data and the original model ------------------------------------------------------------------------------

common.warm_up()  # the accountants' imports (≈ 2-5 s once per process) run while the original model trains
try:
    pg = get_playground(state.dataset, state.seed, state.model)
except ConfigError as exc:
    st.error(pstate.plain(str(exc)), icon=":material/error:")
    st.stop()
try:
    pg.check_forget(state.deleted)
except ConfigError as exc:
    st.error(pstate.plain(str(exc)), icon=":material/error:")
    state = dataclasses.replace(state, deleted=ss.get(f"{PREFIX}._last_good", ()))
    ss[STATE] = state
ss[f"{PREFIX}._last_good"] = state.deleted


# -- sliders: λ, ε, δ of the method -----------------------------------------------------------------------------

def slider_options(name: str, current: float) -> list[float]:
    """A 1-2-5 log grid over the hyperparameter's range (plus 0 where allowed, and the current value)."""
    param = schema[name]
    spans = {"lam": (1e-4, 1e3), "epsilon": (1e-2, 1e3), "delta": (1e-10, 1e-1)}
    lo, hi = spans[name]
    lo = max(lo, param.low or lo)
    hi = min(hi, param.high if param.high is not None else hi)
    values = [m * 10.0**k for k in range(-12, 7) for m in (1, 2, 5) if lo <= m * 10.0**k <= hi]
    if param.low == 0:
        values.insert(0, 0.0)
    values.append(float(current))
    return sorted(set(values))


def _fmt(value: float) -> str:
    return f"{value:g}"


left, right = st.columns([3, 2], gap="medium")
params = dict(state.params)
with right:
    for name in pstate.SLIDER_PARAMS:
        if name not in schema:
            continue
        key = f"{PREFIX}.p.{state.method}.{name}"
        current = params.get(name, engine.method_params(state.method, model=state.model).get(name))
        if not isinstance(current, (int, float)):
            continue
        _seed_widget(key, float(current))
        if ss[key] not in slider_options(name, float(current)):
            ss[key] = float(current)
        st.select_slider(schema[name].display, options=slider_options(name, float(ss[key])), key=key,
                         format_func=_fmt, help=schema[name].help)
        params[name] = float(ss[key])
    if not any(name in schema for name in pstate.SLIDER_PARAMS):
        st.caption(f"{state.method} has no λ, ε or δ: it runs with its own settings.")
state = dataclasses.replace(state, params=params)
ss[STATE] = state
query = pstate.to_query(state)
ss[f"{PREFIX}._query"] = query
if st.query_params.to_dict() != query:
    st.query_params.from_dict(query)


# -- one click: compute (three boundaries first, then the clouds) ---------------------------------------------------

try:
    resolved = engine.method_params(state.method, state.params, model=state.model)
except ConfigError as exc:
    st.error(pstate.plain(str(exc)), icon=":material/error:")
    st.stop()
key = (state.dataset, state.seed, state.model, state.deleted, state.method, _params_key(resolved))
memo = _memo()
full = memo.get(key)
points = data2d.points(pg.data)
labels = pg.data.y_train.numpy()


def _figure(outcome: engine.Outcome, *, clouds: bool) -> Any:
    return figures.playground_figure(
        points, labels, state.deleted, original=outcome.original,
        retrained=outcome.retrained if outcome.forget else None, unlearned=outcome.unlearned,
        cloud_unlearned=outcome.cloud_unlearned if clouds else (),
        cloud_retrained=outcome.cloud_retrained if clouds else ())


def on_select(chart_key: str) -> Callable[[], None]:
    """The chart's selection → the forget set (:func:`unlearn_core.playground.state.apply_selection`); the chart
    then gets a new key, so no stale selection lingers."""

    def handle() -> None:
        event = ss.get(chart_key) or {}
        selection = event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
        current: pstate.PlaygroundState = ss[STATE]
        ss[STATE] = dataclasses.replace(current, deleted=pstate.apply_selection(current.deleted, selection))
        ss[f"{PREFIX}._chart"] = ss.get(f"{PREFIX}._chart", 0) + 1

    return handle


with left:
    chart = st.empty()
    if full is None:
        if not WARM_UP.done.is_set():
            with st.spinner("Loading the privacy accountants (once per server)…"):
                WARM_UP.wait()
        with st.spinner("Retraining and unlearning…"):
            try:
                first = engine.unlearn(pg, state.deleted, state.method, resolved, draws=0)
            except ConfigError as exc:
                st.error(pstate.plain(str(exc)), icon=":material/error:")
                st.stop()
        if first.release is not None and first.release.kind == engine.RUNS:
            # Each draw is a whole run of the method: show the three boundaries first, then the clouds.
            chart.plotly_chart(_figure(first, clouds=False), width="stretch", config={"displaylogo": False})
            with st.spinner("Drawing the noise clouds…"):
                full = engine.draw_clouds(pg, first, draws=engine.cloud_draws(first))
        else:  # Gaussian draws cost a forward pass each: one drawing, not two
            full = engine.draw_clouds(pg, first, draws=engine.cloud_draws(first))
        memo.put(key, full)
    chart_key = f"{PREFIX}.plot.{ss.get(f'{PREFIX}._chart', 0)}"
    chart.plotly_chart(_figure(full, clouds=True), width="stretch", key=chart_key, on_select=on_select(chart_key),
                       selection_mode=("points", "lasso"),
                       config={"displaylogo": False, "modeBarButtonsToRemove": ["zoom2d", "zoomIn2d", "zoomOut2d",
                                                                                "autoScale2d", "resetScale2d",
                                                                                "select2d", "toImage"]})
    n_deleted = len(state.deleted)
    b1, b2 = st.columns([3, 2])
    b1.caption(f"**{n_deleted}** point{'s' if n_deleted != 1 else ''} deleted of {pg.n_train}. "
               + (f"{full.cloud_note}." if full.cloud_note else ""))
    if b2.button("Restore all points", icon=":material/undo:", disabled=not state.deleted, key=f"{PREFIX}.restore"):
        ss[STATE] = dataclasses.replace(state, deleted=())
        ss[f"{PREFIX}._chart"] = ss.get(f"{PREFIX}._chart", 0) + 1
        st.rerun()


# -- beside the plot: the certificate and the verdict, in Explore's words ----------------------------------------

def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    return f"{value:.4g}"


with right:
    if full.error:
        st.info(full.error, icon=":material/touch_app:" if not state.deleted else ":material/block:")
    else:
        cert = full.certificate
        if cert is not None:
            words = cert.status
            failing = cert.failing()
            if failing and failing[0].name == "noise":
                words = "not certified by the bound"
            st.markdown(f"**Certificate:** {results.status_badge(cert.status)}"
                        + (f" — {words}" if words != cert.status else "")
                        + f"  \nΔ = **{_num(cert.sensitivity) if cert.sensitivity is not None else 'n/a'}** · "
                          f"σ used = **{_num(cert.sigma_used)}** (required {_num(cert.sigma_required)}) · ε certified "
                          f"= **{_num(cert.epsilon_certified)}**",
                        help="Δ bounds the distance the noise must hide (∞: a hypothesis of the bound fails); σ is the "
                             "standard deviation of the release noise per parameter — the width of the clouds; "
                             f"accountant: {cert.accountant}. The full certificate is under Details below.")
        else:
            st.markdown(f"**Certificate:** {common.FAMILY_BADGE.get(full.family, full.family)} — no (ε, δ) guarantee")
        results.verdict_box(full.card or {})
        ratio = full.distance.get("ratio")
        if ratio is not None:
            st.caption(f"The noise-free unlearned boundary is **{_num(ratio)}×** the original's distance from the "
                       f"retrained boundary (0 = on it, 1 = no closer than doing nothing); {full.unlearned_note}.")
        elif full.unlearned is None:
            st.caption(full.unlearned_note)


# -- the guessing game -----------------------------------------------------------------------------------------------

st.subheader("The game: which cloud never saw the deleted points?", divider="gray")
release = full.release
if release is None or full.error:
    st.caption("Delete at least one point and choose a method that adds release noise (a certified method) to play: "
               "each round shows two clouds of releases, one from the unlearned model and one from the model that "
               "never saw the points, and you guess which is which.")
else:
    gkey = key
    game_state = ss.get(GAME)
    if not game_state or game_state.get("key") != gkey:
        game_state = {"key": gkey, "number": 0, "round": None, "answered": None, "played": 0, "won": 0,
                      "ideal_won": 0}
        ss[GAME] = game_state
    cert = full.certificate
    cap = (game.single_release_cap(epsilon=cert.epsilon_certified, delta=cert.delta_guaranteed)
           if cert is not None and math.isfinite(cert.epsilon_certified) else None)
    draws = engine.cloud_draws(full)
    best = game.gaussian_ideal_accuracy(release, draws=draws)
    st.caption(
        f"Each round draws {draws} releases from each side (a simulation, from seeded draws): one cloud from the "
        "unlearned model, one from the model that never saw the points, in random order. Guess which cloud never "
        "saw them. The certificate promises that nobody can do much better than chance: this is the audit in "
        "miniature — the **Audit** page plays it over many runs with the strongest attacks."
        + (f" One release against the retrained one: at most **{100 * cap:.1f} %** right at ε = "
           f"{_num(cert.epsilon_certified)} (with {draws} releases per cloud, more: ε adds up)." if cap else "")
        + (f" A guesser who knows both noise-free models wins **{100 * best:.1f} %** of rounds here." if best else
           f" ({state.method}'s noise is inside the method, so the best possible score has no closed form here: the "
           "Audit page measures it.)"))
    g1, g2, g3 = st.columns([2, 2, 3])
    if g1.button("New round", icon=":material/casino:", key=f"{PREFIX}.game.new", type="primary"):
        game_state["number"] += 1
        with st.spinner("Drawing two clouds…"):
            game_state["round"] = game.new_round(release, number=game_state["number"], draws=draws)
        game_state["answered"] = None
    played, won = game_state["played"], game_state["won"]
    g3.markdown(f"**Your score: {won} / {played}**" + (f" ({100 * won / played:.0f} %)" if played else "")
                + " · chance 50 %" + (f" · best possible here {100 * best:.0f} %" if best else ""))
    g2.page_link("pages/audit.py", label="The audit, at scale", icon=":material/policy:")
    current_round: game.Round | None = game_state["round"]
    if current_round is not None:
        a_col, b_col = st.columns(2)
        for side, col in (("A", a_col), ("B", b_col)):
            with col:
                cloud = release.boundaries(current_round.cloud(side), pg.grid)
                st.plotly_chart(figures.game_figure(points, labels, state.deleted, cloud, title=f"Cloud {side}"),
                                width="stretch", key=f"{PREFIX}.game.fig.{side}", config={"displayModeBar": False})
                if game_state["answered"] is None and st.button(f"{side} never saw them", key=f"{PREFIX}.game.{side}"):
                    game_state["answered"] = side
                    game_state["played"] += 1
                    game_state["won"] += int(side == current_round.never_saw)
                    ideal = game.ideal_guess(current_round, release)
                    game_state["ideal_won"] += int(ideal == current_round.never_saw)
                    game_state["ideal"] = ideal
                    st.rerun()
        if game_state["answered"] is not None:
            right_answer = current_round.never_saw
            ideal = game_state.get("ideal")
            text = (f"Cloud {right_answer} came from the model that never saw the points"
                    + (f"; the ideal guesser said {ideal}" if ideal else "") + ". Press **New round** to play again.")
            (st.success if game_state["answered"] == right_answer else st.error)(
                ("Right! " if game_state["answered"] == right_answer else "Wrong. ") + text)


# -- details ---------------------------------------------------------------------------------------------------------

# A toggle, not an expander: an expander's content is sent (and the accuracy table drawn) on every click, shown or
# not, and this page reruns on every click.
if st.toggle("Details: accuracy, the full certificate, timings and the training recipe", key=f"{PREFIX}.details"):
    if full.card:
        d1, d2 = st.columns([3, 2])
        with d1:
            st.markdown("**Accuracy** — closer to the retrained model is better")
            results.accuracy_dataframe(full.card)
        with d2:
            results.certificate_card(full.card)
    st.caption("Seconds of this click: " + ", ".join(f"{k} {v:.2f}" for k, v in full.timing_s.items()))
    summary = pg.original_summary
    st.caption(f"Original model: {pg.train_config.optimizer} on {pg.n_train} points, weight decay "
               f"{pg.train_config.weight_decay:g}, ‖w‖ ≤ C = {pg.train_config.norm_bound:g}; "
               f"{summary.get('stop_reason', '')}. Retrained model: {full.retrained_summary.get('stop_reason', '')}.")
