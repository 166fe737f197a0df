"""Forget-set size: how cost, accuracy and the certificate scale as the forget set grows.

Runs :func:`unlearn_core.experiments.forget_size` in the background (the CLI's ``experiment forget-size``) and
draws it with :func:`unlearn_core.plots.forget_size_figure`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import common, downloads, results, status, stories, widgets
from unlearn_core import formatting as fmt
from unlearn_core.errors import ConfigError
from unlearn_core.service import ui_state

PREFIX = "forget_size"
COLUMNS = {
    "method": "method", "n_forget": "n_u", "time_s": "time", "speedup": "speed-up vs retrain",
    "acc_forget": "acc forget", "acc_test": "acc test", "status": "certificate", "sigma_required": "σ required",
    "epsilon_certified": "ε certified", "why_not_certified": "why not certified",
}

common.require_router()
st.title("Forget-set size")
st.caption("Random forget sets of growing size n_u, each with its own retrained model (trained once, cached): the "
           "unlearning time against retraining, the accuracy against the retrained model, and the noise the "
           "certificate requires.")

all_methods = [n for n in ui_state.method_names() if n != "retrain"]  # retraining is the reference row
DEFAULTS = ui_state.PAGE_DEFAULTS["forget_size"]


def _methods(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    bad = [n for n in names if n not in all_methods]
    if bad or not names:
        raise ConfigError(f"methods={text!r} is not valid: choose from {', '.join(all_methods)}")
    return names


def _sizes(text: str) -> str:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise ConfigError(f"sizes={text!r} is not valid: expected comma-separated counts ≥ 1 or fractions < 1, "
                          "e.g. 10,100,300")
    return ",".join(f"{v:g}" for v in values)


# Every setting travels in the URL (?methods=…&sizes=10,100,300&seeds=1 and each method's p.<method>.<name>).
extras = widgets.init_page(PREFIX, defaults=DEFAULTS, extra_fields={
    "methods": _methods, "sizes": _sizes, "seeds": ui_state.int_field("seeds", low=1, high=10)})
if not st.session_state.get(f"{PREFIX}._method_params"):
    for m in all_methods:
        # The method's own fast demo settings (Unlearner.demo_params), the page's defaults, then the link's.
        values = {**ui_state.quick_params(m), **DEFAULTS.method_params.get(m, {})}
        if values:
            widgets.seed_method_params(PREFIX, m, values)
    by_method, warnings = ui_state.method_params_from_query(st.query_params.to_dict())
    for method_name, values in by_method.items():
        if method_name in all_methods:
            widgets.seed_method_params(PREFIX, method_name, {**widgets.read_params(PREFIX, method_name), **values})
    for line in warnings:
        st.warning(line, icon=":material/warning:")
    st.session_state[f"{PREFIX}._method_params"] = True
common.seed_once(f"{PREFIX}.methods", [m for m in extras.get("methods", ()) if m in all_methods] or all_methods[:1])
common.seed_once(f"{PREFIX}.sizes", extras.get("sizes", "10,100,300"))
common.seed_once(f"{PREFIX}.nseeds", extras.get("seeds", 1))
widgets.presets_row(PREFIX)
widgets.config_widgets(PREFIX, method=False)

st.multiselect("Methods", all_methods, key=f"{PREFIX}.methods")
with st.form(f"{PREFIX}.form", enter_to_submit=False):
    c1, c2 = st.columns([3, 1])
    sizes_text = c1.text_input("Forget-set sizes (points, comma-separated)", key=f"{PREFIX}.sizes",
                               help="Counts ≥ 1, or fractions below 1 of the training set.")
    with c2:
        n_seeds = widgets.seeds_widget(PREFIX)
    submitted = st.form_submit_button("Run sweep", type="primary", icon=":material/play_arrow:")
    chosen_now = list(st.session_state[f"{PREFIX}.methods"]) or all_methods[:1]
    widgets.method_param_tabs(PREFIX, chosen_now, note="each method's own settings (the link carries them)")

chosen = list(st.session_state[f"{PREFIX}.methods"])
cfg = widgets.config_or_stop(PREFIX, method=all_methods[0], with_params=False, extra={
    "methods": ",".join(chosen), "sizes": sizes_text, "seeds": int(n_seeds),
    **ui_state.method_params_to_query({m: widgets.read_params(PREFIX, m) for m in chosen}),
})
try:  # before Run (#20 item 14); a malformed list is said when Run is pressed
    status.experiment_estimate_caption(st, "forget_size", cfg, n_seeds=n_seeds, methods=chosen,
                                       sizes=[float(t) for t in sizes_text.split(",") if t.strip()],
                                       params={m: widgets.read_params(PREFIX, m) for m in chosen})
except ValueError:
    pass

if submitted:
    try:
        if not chosen:
            raise ConfigError("methods=[] is not valid: pick at least one method")
        try:
            sizes = [float(t) for t in sizes_text.split(",") if t.strip()]
        except ValueError:
            raise ConfigError(f"sizes={sizes_text!r} is not valid: expected comma-separated numbers") from None
        if not sizes:
            raise ConfigError("sizes is empty: give at least one forget-set size")
    except ConfigError as exc:
        common.engine_error(exc)
        st.stop()
    params = {m: widgets.read_params(PREFIX, m) for m in chosen}
    base, _ = widgets.run_config_or_stop(cfg, method=chosen[0], params=params[chosen[0]])
    status.submit_experiment(PREFIX, "forget_size", base, n_seeds=n_seeds, label=", ".join(chosen), methods=chosen,
                             sizes=sizes, params=params)


def render(df, card, run_id) -> None:
    st.subheader("Results")
    n = df["seed"].nunique()
    conclusion = stories.forget_size_story(df)
    if conclusion:
        st.markdown(conclusion)
    st.caption(f"Mean over {n} seed{'s' if n > 1 else ''}, one row per (method, n_u); `retrained` is the reference "
               "(its time is the retraining time). ε certified is shown only for a certified row: a not-certified "
               "row says why instead.")
    grouped = df.assign(group=[f"{m} · {k}" for m, k in zip(df["method"], df["n_forget"], strict=True)])
    table = results.mean_table(grouped, by="group", columns=COLUMNS)
    not_certified = table["certificate"] == "not certified" if "certificate" in table else pd.Series(False)
    if "ε certified" in table:
        table["ε certified"] = [None if bad else v for v, bad in zip(table["ε certified"], not_certified,
                                                                       strict=True)]
    shown = results.display_table(table, percent=("acc forget", "acc test"), counts=("n_u",), seconds=("time",))
    if "speed-up vs retrain" in shown:
        shown["speed-up vs retrain"] = [f"{fmt.sig(v, 2)}×" if not fmt.is_missing(v) else fmt.MISSING
                                        for v in table["speed-up vs retrain"]]
    st.dataframe(shown.set_index("method"), width="stretch")
    downloads.experiment_downloads(PREFIX, df, card, figures=results.experiment_figures(PREFIX, "forget_size", df),
                                  name=f"forget-size-{cfg.dataset}-{cfg.model}")


status.experiment_panel(PREFIX, render)
