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

from pages import _common as ui
from unlearn_core import ui_state
from unlearn_core.data import DATASETS
from unlearn_core.errors import ConfigError
from unlearn_core.verdict import verdicts_from_rows

PREFIX = "compare"
COLUMNS = {
    "family": "family", "status": "certificate", "acc_forget": "acc forget", "acc_retain": "acc retain",
    "acc_test": "acc test", "dist_to_retrained": "‖w − w_retrained‖", "js_forget": "JS to retrained (forget)",
    "mia_loss_auc": "loss MIA AUC", "relearn_steps": "relearn steps", "time_s": "time (s)",
    "speedup": "speed-up vs retrain",
}

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


extras = ui.init_page(PREFIX, extra_fields={
    "methods": _methods, "seeds": ui_state.int_field("seeds", low=1, high=10), "mia": ui_state.bool_field("mia"),
    "relearn": ui_state.bool_field("relearn"),
})
if not st.session_state.get(f"{PREFIX}._method_params"):
    # The URL's p.<method>.<name> (this page's own deep link) seeds each method's tab once.
    by_method, warnings = ui_state.method_params_from_query(st.query_params.to_dict())
    for method_name, values in by_method.items():
        ui.seed_method_params(PREFIX, method_name, {**ui.read_params(PREFIX, method_name), **values})
    for line in warnings:
        st.warning(line, icon=":material/warning:")
    st.session_state[f"{PREFIX}._method_params"] = True
all_methods = [n for n in ui_state.method_names() if n != "retrain"]  # retraining is the reference row
ui.seed_once(f"{PREFIX}.methods", [m for m in (extras.get("methods") or all_methods) if m in all_methods])
ui.seed_once(f"{PREFIX}.mia", extras.get("mia", True))
ui.seed_once(f"{PREFIX}.relearn", extras.get("relearn", True))
ui.seed_once(f"{PREFIX}.nseeds", extras.get("seeds", 1))
ui.presets_row(PREFIX)
ui.config_widgets(PREFIX, method=False)
st.multiselect("Methods", all_methods, key=f"{PREFIX}.methods")
chosen = list(st.session_state[f"{PREFIX}.methods"])
with st.form(f"{PREFIX}.form", enter_to_submit=False):
    c1, c2, c3 = st.columns(3)
    with c1:
        n_seeds = ui.seeds_widget(PREFIX)
    mia = c2.checkbox("Membership inference", key=f"{PREFIX}.mia",
                      help="Three held-out attacks per model (loss, posterior difference, SVC).")
    relearn = c3.checkbox("Relearn time", key=f"{PREFIX}.relearn",
                          help="SGD steps on the forget set until the original forget accuracy is back.")
    if chosen:
        st.markdown("**Hyperparameters of each method** — a preset's, the link's, or the defaults")
        for tab, method_name in zip(st.tabs(chosen), chosen, strict=True):
            with tab:
                ui.param_widgets(PREFIX, method_name)
    submitted = st.form_submit_button("Run comparison", type="primary", icon=":material/play_arrow:")

params = {m: ui.read_params(PREFIX, m) for m in chosen}
cfg = ui.config_or_stop(PREFIX, method=all_methods[0], with_params=False, extra={
    "methods": ",".join(chosen), "seeds": int(n_seeds), "mia": bool(mia), "relearn": bool(relearn),
    **ui_state.method_params_to_query(params),
})

if submitted:
    if not chosen:
        ui.engine_error(ConfigError("methods=[] is not valid: pick at least one method"))
        st.stop()
    for method_name in chosen:  # every method's hyperparameters validated before anything runs
        ui.run_config_or_stop(dataclasses.replace(cfg, method=method_name, params=params[method_name]))
    base, _ = ui.run_config_or_stop(cfg, method=chosen[0], params={})
    ui.submit_experiment(PREFIX, "compare", base, n_seeds=n_seeds, label=", ".join(chosen), methods=chosen,
                         params=params, mia=mia, relearn=relearn)


def render(df, card, run_id) -> None:
    n = df["seed"].nunique()
    st.subheader("Results")
    verdicts = verdicts_from_rows(df, num_classes=DATASETS[card["config"]["dataset"]].num_classes
                                  if card["config"].get("dataset") in DATASETS else None)
    for method_name, verdict in verdicts.items():
        box, icon = ui.VERDICT_STYLE[verdict.tone]
        box(f"**{method_name}** — {verdict.headline}", icon=icon)
    st.caption(f"Mean over {n} seed{'s' if n > 1 else ''}. Read every number against the `retrained` row: closer "
               "is better, and far below it (e.g. a lower forget accuracy) is over-unlearning. The verdict's rules: "
               + (next(iter(verdicts.values())).rules if verdicts else ""))
    table = ui.mean_table(df, by="method", columns=COLUMNS)
    table.insert(0, "verdict", [verdicts[m].label if m in verdicts else "reference" for m in table.index])
    st.dataframe(table, width="stretch")
    ui.experiment_results(PREFIX, "compare", df, card, name=f"compare-{cfg.dataset}-{cfg.model}")


ui.experiment_panel(PREFIX, render)
