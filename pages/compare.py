"""Compare: several methods on one configuration — a verdict per method, a table and charts against retraining
(Zhang et al. Table 1).

Runs :func:`unlearn_core.experiments.compare` in the background (the CLI's ``experiment compare``), so the page
and the command line produce the same tidy rows; the figures come from :mod:`unlearn_core.plots`. Each method runs
with the hyperparameters in its tab (a preset's, the URL's ``p.<method>.<name>``, or its defaults), and the URL
carries every setting: methods, seeds, MIA, relearn and the hyperparameters that differ from the defaults.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from pages import _common as common
from pages import _downloads as downloads
from pages import _results as results
from pages import _status as status
from pages import _widgets as widgets
from unlearn_core.data import DATASETS
from unlearn_core.errors import ConfigError
from unlearn_core.experiments import FRONTIER_EPSILONS, frontier_methods
from unlearn_core.service import ui_state
from unlearn_core.service.text import plain
from unlearn_core.verdict import THRESHOLDS, frontier_first_epsilon, verdicts_from_rows

PREFIX = "compare"
COLUMNS = {
    "family": "family", "status": "certificate", "acc_forget": "acc forget", "acc_retain": "acc retain",
    "acc_test": "acc test", "dist_to_retrained": "‖w − w_retrained‖", "js_forget": "JS to retrained (forget)",
    "mia_loss_auc": "loss MIA AUC", "relearn_steps": "relearn steps", "time_s": "time (s)",
    "speedup": "speed-up vs retrain",
}

common.require_router()
st.title("Compare")
st.caption("Run several unlearners on the same data, forget set and trained models (trained once per seed, shared) "
           "and see which gets closest to retraining for how much time. `original` and `retrained` are the "
           "reference rows.")


def _methods(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    bad = [n for n in names if n not in ui_state.method_names()]
    if bad:
        raise ConfigError(f"methods={text!r} is not valid: choose from {', '.join(ui_state.method_names())}")
    return names


def _epsilons(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or any(not 0 < v <= 1000 for v in values):
        raise ConfigError(f"eps={text!r} is not valid: expected comma-separated numbers in (0, 1000], e.g. 0.1,1,10")
    return values


extras = widgets.init_page(PREFIX, extra_fields={
    "methods": _methods, "seeds": ui_state.int_field("seeds", low=1, high=10), "mia": ui_state.bool_field("mia"),
    "relearn": ui_state.bool_field("relearn"), "fmethods": _methods, "eps": _epsilons,
    "fseeds": ui_state.int_field("fseeds", low=1, high=10),
})
if not st.session_state.get(f"{PREFIX}._method_params"):
    # The URL's p.<method>.<name> (this page's own deep link) seeds each method's tab once.
    by_method, warnings = ui_state.method_params_from_query(st.query_params.to_dict())
    for method_name, values in by_method.items():
        widgets.seed_method_params(PREFIX, method_name, {**widgets.read_params(PREFIX, method_name), **values})
    for line in warnings:
        st.warning(plain(line), icon=":material/warning:")
    st.session_state[f"{PREFIX}._method_params"] = True
all_methods = [n for n in ui_state.method_names() if n != "retrain"]  # retraining is the reference row
common.seed_once(f"{PREFIX}.methods", [m for m in (extras.get("methods") or all_methods) if m in all_methods])
common.seed_once(f"{PREFIX}.mia", extras.get("mia", True))
common.seed_once(f"{PREFIX}.relearn", extras.get("relearn", True))
common.seed_once(f"{PREFIX}.nseeds", extras.get("seeds", 1))
widgets.presets_row(PREFIX)
widgets.config_widgets(PREFIX, method=False)
st.multiselect("Methods", all_methods, key=f"{PREFIX}.methods")
chosen = list(st.session_state[f"{PREFIX}.methods"])
with st.form(f"{PREFIX}.form", enter_to_submit=False):
    c1, c2, c3 = st.columns(3)
    with c1:
        n_seeds = widgets.seeds_widget(PREFIX)
    mia = c2.checkbox("Membership inference", key=f"{PREFIX}.mia",
                      help="Three held-out attacks per model (loss, posterior difference, SVC).")
    relearn = c3.checkbox("Relearn time", key=f"{PREFIX}.relearn",
                          help="SGD steps on the forget set until the original forget accuracy is back.")
    if chosen:
        widgets.method_param_tabs(PREFIX, chosen, note="a preset's, the link's, or the defaults")
    submitted = st.form_submit_button("Run comparison", type="primary", icon=":material/play_arrow:")

params = {m: widgets.read_params(PREFIX, m) for m in chosen}
certified = frontier_methods()
common.seed_once("frontier.methods", [m for m in (extras.get("fmethods") or certified) if m in certified])
common.seed_once("frontier.eps", ",".join(f"{e:g}" for e in (extras.get("eps") or FRONTIER_EPSILONS)))
common.seed_once("frontier.nseeds", extras.get("fseeds", 1))
frontier_chosen = list(st.session_state["frontier.methods"])
cfg = widgets.config_or_stop(PREFIX, method=all_methods[0], with_params=False, extra={
    "methods": ",".join(chosen), "seeds": int(n_seeds), "mia": bool(mia), "relearn": bool(relearn),
    "fmethods": ",".join(frontier_chosen), "eps": st.session_state["frontier.eps"],
    "fseeds": int(st.session_state["frontier.nseeds"]),
    **ui_state.method_params_to_query({m: widgets.read_params(PREFIX, m)
                                       for m in dict.fromkeys(chosen + frontier_chosen)}),
})

status.experiment_estimate_caption(st, "compare", cfg, n_seeds=n_seeds, methods=chosen, params=params, mia=mia,
                                   relearn=relearn)  # before Run (#20 item 14)

if submitted:
    if not chosen:
        common.engine_error(ConfigError("methods=[] is not valid: pick at least one method"))
        st.stop()
    for method_name in chosen:  # every method's hyperparameters validated before anything runs
        widgets.run_config_or_stop(dataclasses.replace(cfg, method=method_name, params=params[method_name]))
    base, _ = widgets.run_config_or_stop(cfg, method=chosen[0], params={})
    status.submit_experiment(PREFIX, "compare", base, n_seeds=n_seeds, label=", ".join(chosen), methods=chosen,
                             params=params, mia=mia, relearn=relearn)


def render(df, card, run_id) -> None:
    n = df["seed"].nunique()
    st.subheader("Results")
    verdicts = verdicts_from_rows(df, num_classes=DATASETS[card["config"]["dataset"]].num_classes
                                  if card["config"].get("dataset") in DATASETS else None)
    for method_name, verdict in verdicts.items():
        box, icon = results.VERDICT_STYLE[verdict.tone]
        box(f"**{method_name}** — {verdict.headline}", icon=icon)
    st.caption(f"Mean over {n} seed{'s' if n > 1 else ''}. Read every number against the `retrained` row: closer "
               "is better, and far below it (e.g. a lower forget accuracy) is over-unlearning. The verdict's rules: "
               + (next(iter(verdicts.values())).rules if verdicts else ""))
    table = results.mean_table(df, by="method", columns=COLUMNS)
    table.insert(0, "verdict", [verdicts[m].label if m in verdicts else "reference" for m in table.index])
    st.dataframe(table, width="stretch")
    downloads.experiment_downloads(PREFIX, df, card, figures=results.experiment_figures(PREFIX, "compare", df),
                                  name=f"compare-{cfg.dataset}-{cfg.model}")


status.experiment_panel(PREFIX, render)

# -- the privacy–utility frontier: what certification costs ---------------------------------------------------------

st.header("Privacy–utility frontier", anchor="frontier")
st.caption("Each certified method's test accuracy against ε, on this configuration: the noise a smaller ε needs "
           "costs accuracy. The retrained and original models are the reference lines; a star marks the first ε at "
           f"which a method is at most {100 * THRESHOLDS.accuracy_points:g} points below retraining. Each method runs "
           "with its hyperparameters above (its tab), ε set to each value.")
with st.form("frontier.form", enter_to_submit=False):
    c1, c2, c3 = st.columns([3, 3, 1])
    c1.multiselect("Certified methods", certified, key="frontier.methods")
    c2.text_input("ε values (comma-separated)", key="frontier.eps", help="e.g. 0.1,0.3,1,3,10,30,100")
    with c3:
        frontier_seeds = widgets.seeds_widget("frontier")
    run_frontier = st.form_submit_button("Run frontier", type="primary", icon=":material/show_chart:")

try:  # before Run (#20 item 14)
    status.experiment_estimate_caption(st, "frontier", cfg, n_seeds=frontier_seeds, methods=frontier_chosen,
                                       epsilons=_epsilons(st.session_state["frontier.eps"]),
                                       params={m: widgets.read_params(PREFIX, m) for m in frontier_chosen})
except ConfigError:
    pass  # said when Run is pressed

if run_frontier:
    try:
        epsilons = _epsilons(st.session_state["frontier.eps"])
        if not frontier_chosen:
            raise ConfigError("methods=[] is not valid: pick at least one certified method")
    except ConfigError as exc:
        common.engine_error(exc)
        st.stop()
    frontier_params = {m: widgets.read_params(PREFIX, m) for m in frontier_chosen}
    for method_name in frontier_chosen:
        widgets.run_config_or_stop(dataclasses.replace(cfg, method=method_name, params=frontier_params[method_name]))
    base, _ = widgets.run_config_or_stop(cfg, method=frontier_chosen[0], params={})
    status.submit_experiment("frontier", "frontier", base, n_seeds=frontier_seeds, label=", ".join(frontier_chosen),
                             methods=frontier_chosen, epsilons=epsilons, params=frontier_params)


def render_frontier(df, card, run_id) -> None:
    st.subheader("Frontier")
    points = 100 * THRESHOLDS.accuracy_points
    lines = []
    for method_name, mark in frontier_first_epsilon(df).items():
        if mark.first is None:
            lines.append(f"- **{method_name}**: always more than {points:g} points below retraining on this ε grid.")
        elif mark.stays:
            lines.append(f"- **{method_name}**: at most {points:g} points below retraining from ε = {mark.first:g} "
                         "on.")
        else:
            lines.append(f"- **{method_name}**: at most {points:g} points below retraining from ε = {mark.first:g}, "
                         f"but more again at ε = {mark.leaves_at:g}.")
    st.markdown("\n".join(lines))
    downloads.experiment_downloads("frontier", df, card, figures=results.experiment_figures("frontier", "frontier", df),
                                  name=f"frontier-{cfg.dataset}-{cfg.model}")


status.experiment_panel("frontier", render_frontier)
