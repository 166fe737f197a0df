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

from dashboard import common, downloads, results, status, widgets
from unlearn_core import formatting as fmt
from unlearn_core.data import DATASETS
from unlearn_core.errors import ConfigError
from unlearn_core.experiment_options import parse_epsilons
from unlearn_core.experiments import FRONTIER_EPSILONS, frontier_methods
from unlearn_core.service import ui_state
from unlearn_core.service.text import plain
from unlearn_core.verdict import THRESHOLDS, frontier_first_epsilon, verdicts_from_rows

PREFIX = "compare"
#: The table's columns: the key ones fit 1024 px beside the verdict; the rest wait in "All columns".
COLUMNS = {
    "status": "certificate", "acc_forget": "acc forget", "acc_test": "acc test",
    "js_forget": "JS (forget)", "mia_loss_auc": "MIA AUC", "time_s": "time", "speedup": "speed-up",
}
MORE_COLUMNS = {
    "family": "family", "acc_retain": "acc retain", "dist_to_retrained": "‖w − w_retrained‖",
    "dist_to_original": "‖w − w_original‖", "js_test": "JS to retrained (test)", "relearn_steps": "relearn steps",
    "epsilon": "ε", "sigma_used": "σ used", "why_not_certified": "why not certified",
}
DEFAULTS = ui_state.PAGE_DEFAULTS["compare"]

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


extras = widgets.init_page(PREFIX, defaults=DEFAULTS, extra_fields={
    "methods": _methods, "seeds": ui_state.int_field("seeds", low=1, high=10), "mia": ui_state.bool_field("mia"),
    "relearn": ui_state.bool_field("relearn"), "fmethods": _methods, "eps": parse_epsilons,
    "fseeds": ui_state.int_field("fseeds", low=1, high=10),
})
if not st.session_state.get(f"{PREFIX}._method_params"):
    # The page's defaults (e.g. certified Newton with a finite bound), then the URL's p.<method>.<name> (this page's
    # own deep link), seed each method's tab once.
    for method_name, values in DEFAULTS.method_params.items():
        if method_name in ui_state.method_names() and "method" not in st.query_params:
            widgets.seed_method_params(PREFIX, method_name, values)
    by_method, warnings = ui_state.method_params_from_query(st.query_params.to_dict())
    for method_name, values in by_method.items():
        widgets.seed_method_params(PREFIX, method_name, {**widgets.read_params(PREFIX, method_name), **values})
    for line in warnings:
        st.warning(plain(line), icon=":material/warning:")
    st.session_state[f"{PREFIX}._method_params"] = True
all_methods = [n for n in ui_state.method_names() if n != "retrain"]  # retraining is the reference row
common.seed_once(f"{PREFIX}.methods", [m for m in (extras.get("methods") or all_methods) if m in all_methods])
common.seed_once(f"{PREFIX}.mia", extras.get("mia", True))
common.seed_once(f"{PREFIX}.relearn", extras.get("relearn", False))
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
               "is better, and far below it (e.g. a lower forget accuracy) is over-unlearning. JS (forget): "
               "Jensen–Shannon divergence of the outputs on the forget set to the retrained model's; MIA AUC: the loss "
               "attack on the forget set.")
    if verdicts:
        with st.expander("How the verdicts are decided", icon=":material/help:"):
            st.caption(next(iter(verdicts.values())).rules)
    table = results.mean_table(df, by="method", columns={**COLUMNS, **MORE_COLUMNS})
    table.insert(0, "verdict", [verdicts[m].label if m in verdicts else "reference" for m in table.index])
    shown = results.display_table(table, percent=("acc forget", "acc test", "acc retain"), seconds=("time",),
                                  counts=("relearn steps",))
    shown["speed-up"] = [f"{fmt.sig(v, 2)}×" if not fmt.is_missing(v) else fmt.MISSING for v in table["speed-up"]] \
        if "speed-up" in table else fmt.MISSING
    key = ["verdict", *[c for c in COLUMNS.values() if c in shown]]
    st.dataframe(shown[key], width="stretch", column_config={
        "verdict": st.column_config.TextColumn(width="medium"),
        "certificate": st.column_config.TextColumn(width="medium"),
        "JS (forget)": st.column_config.TextColumn(help="Jensen–Shannon divergence of the outputs on the forget set "
                                                        "to the retrained model's (0 = the same)"),
        "MIA AUC": st.column_config.TextColumn(help="loss membership-inference attack, forget vs test (held-out)")})
    with st.expander("All columns", icon=":material/table_view:"):
        st.dataframe(shown, width="stretch")
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
    # The method picker on a row of its own: at 1024 px three chips did not fit beside the ε field (issue 20).
    st.multiselect("Certified methods", certified, key="frontier.methods")
    c2, c3 = st.columns([3, 1])
    c2.text_input("ε values (comma-separated)", key="frontier.eps", help="e.g. 0.1,0.3,1,3,10,30,100")
    with c3:
        frontier_seeds = widgets.seeds_widget("frontier")
    run_frontier = st.form_submit_button("Run frontier", type="primary", icon=":material/show_chart:")

try:  # before Run (#20 item 14)
    status.experiment_estimate_caption(st, "frontier", cfg, n_seeds=frontier_seeds, methods=frontier_chosen,
                                       epsilons=parse_epsilons(st.session_state["frontier.eps"], frontier_chosen),
                                       params={m: widgets.read_params(PREFIX, m) for m in frontier_chosen})
except ConfigError:
    pass  # said when Run is pressed

if run_frontier:
    try:
        if not frontier_chosen:
            raise ConfigError("methods=[] is not valid: pick at least one certified method")
        epsilons = parse_epsilons(st.session_state["frontier.eps"], frontier_chosen)
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
