"""Runs: the history of finished runs (SQLite in the cache directory) — reopen, compare, delete, export."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dashboard import common, downloads, results
from unlearn_core import formatting as fmt
from unlearn_core import plots
from unlearn_core.config import format_value
from unlearn_core.errors import ConfigError
from unlearn_core.service import ui_state
from unlearn_core.service.runstore import RunStoreError
from unlearn_core.unlearners import get_unlearner
from unlearn_core.verdict import verdict_from_card

PREFIX = "runs"

common.require_router()
st.title("Runs")
store = common.get_store()
st.caption(f"Every finished run is stored in `{store.path}`; it survives restarts, and Explore reuses a run with an "
           "identical configuration instead of recomputing it.")



def settings_text(method: str, params: dict) -> str:
    """The method's basic hyperparameters other than ε and δ, by their own names (``lam=0.01, depth=1000``): one
    column for every method without mixing meanings (a bare "λ" column showed certified Newton's local convex term
    beside noisy fine-tuning's contraction term of 50)."""
    try:
        schema = [p for p in get_unlearner(method).schema if p.level == "basic" and p.name not in ("epsilon", "delta")]
    except ConfigError:
        return fmt.MISSING
    shown = [f"{p.name}={format_value(params[p.name])}" for p in schema if p.name in params]
    return ", ".join(shown) or fmt.MISSING


def run_row(r) -> dict:
    """One row of the history, key columns first: what ran (method, data, forget set, its settings, ε, δ), the
    verdict, the test accuracy gap to the retrained model and the time; the bookkeeping (certificate, when, id...)
    after them. Every cell is display text: an experiment's row reads "—" where a run's has a number, never
    "None"."""
    card = r.card
    params = (card.get("config") or {}).get("params") or {}
    models = card.get("models") or {}
    unl, ref = models.get("unlearned") or {}, models.get("retrained") or {}
    verdict = verdict_from_card(card)
    cert = card.get("certificate") or {}
    gap = (unl["acc_test"] - ref["acc_test"] if isinstance(unl.get("acc_test"), (int, float))
           and isinstance(ref.get("acc_test"), (int, float)) else None)
    timing = card.get("timing_s") or {}
    experiment = card.get("experiment") if isinstance(card.get("experiment"), dict) else None
    return {
        "method": r.method, "dataset": r.dataset, "model": r.model, "forget": r.forget,
        "settings": (f"{experiment['kind']} experiment" if experiment else settings_text(r.method, params)),
        "ε": fmt.sig(params.get("epsilon")), "δ": fmt.sig(params.get("delta")),
        "verdict": verdict.label if verdict is not None else ("experiment" if experiment else fmt.MISSING),
        "test acc. gap": fmt.points(gap), "acc test": fmt.percent(unl.get("acc_test")),
        "unlearn": fmt.seconds(timing.get("unlearn")), "retrain": fmt.seconds(timing.get("retrain")),
        "certificate": (cert.get("status", fmt.MISSING) + (" — simulation, not a release" if cert.get("simulation")
                                                            else "")) if cert else fmt.MISSING,
        "‖w − w_retrained‖": fmt.sig((card.get("distance") or {}).get("unlearned_to_retrained")),
        "when": dt.datetime.fromtimestamp(r.created).strftime("%Y-%m-%d %H:%M:%S"), "page": r.kind,
        "label": r.label or fmt.MISSING, "device": card.get("device") or fmt.MISSING, "id": r.id,
    }


try:  # a truncated, garbage or locked runs.sqlite is one line with what to do, never a crashed page
    runs = store.list()
except RunStoreError as exc:
    common.engine_error(exc)
    st.stop()
if runs.unreadable:
    ids = ", ".join(i for i, _ in runs.unreadable[:5]) + (", …" if len(runs.unreadable) > 5 else "")
    st.warning(f"{len(runs.unreadable)} stored run{'s' if len(runs.unreadable) > 1 else ''} cannot be read and "
               f"{'are' if len(runs.unreadable) > 1 else 'is'} left out of the table ({ids}: "
               f"{runs.unreadable[0][1]}).", icon=":material/warning:")
    if st.button("Delete the unreadable runs", key=f"{PREFIX}.delete_unreadable"):
        for run_id, _ in runs.unreadable:
            store.delete(run_id)
        st.rerun()
if runs.total > len(runs) + len(runs.unreadable):
    st.caption(f"Showing the newest {len(runs):,} of {runs.total:,} stored runs; **Export all** below includes every "
               "one.")
if not runs:
    st.info("No runs yet: run something on the Explore page (try the “Quick demo” preset).")
    st.stop()

rows = [{"select": False, **run_row(r)} for r in runs]
table = st.data_editor(
    pd.DataFrame(rows), hide_index=True, width="stretch", key=f"{PREFIX}.table",
    disabled=[c for c in rows[0] if c != "select"],
    column_config={
        "settings": st.column_config.TextColumn(help="the method's main hyperparameters, by their CLI/URL names"),
        "test acc. gap": st.column_config.TextColumn(help="unlearned − retrained test accuracy, in points"),
    },
)
selected = [row["id"] for _, row in table.iterrows() if row["select"]]

c1, c2, c3 = st.columns(3)
c1.download_button("Export all (JSON)", data=store.export_json, file_name="unlearn-runs.json",
                   mime="application/json", on_click="ignore", icon=":material/data_object:")
c2.download_button("Export all (CSV)", data=store.export_csv, file_name="unlearn-runs.csv", mime="text/csv",
                   on_click="ignore", icon=":material/table:")
by_id = {r.id: r for r in runs}


@st.dialog("Delete runs?")
def confirm_delete(ids: list[str]) -> None:
    """Deleting cannot be undone (the run card and the weights go), so it asks first and names what goes."""
    st.write(f"Delete **{len(ids)}** stored run{'s' if len(ids) > 1 else ''}? The run card and the weights are "
             "removed from the history; this cannot be undone.")
    st.dataframe(pd.DataFrame([{"id": i, "method": by_id[i].method, "dataset": by_id[i].dataset,
                                "forget": by_id[i].forget} for i in ids]), hide_index=True, width="stretch")
    c_yes, c_no = st.columns(2)
    if c_yes.button("Delete", type="primary", icon=":material/delete:", key=f"{PREFIX}.delete.confirm"):
        common.delete_runs([by_id[i] for i in ids])
        st.session_state.pop(f"{PREFIX}.to_delete", None)
        st.rerun()
    if c_no.button("Keep them", key=f"{PREFIX}.delete.cancel"):
        st.session_state.pop(f"{PREFIX}.to_delete", None)
        st.rerun()


if selected and c3.button(f"Delete {len(selected)} selected", icon=":material/delete:", key=f"{PREFIX}.delete"):
    st.session_state[f"{PREFIX}.to_delete"] = selected
pending = [i for i in st.session_state.get(f"{PREFIX}.to_delete") or [] if i in by_id]
if pending:
    confirm_delete(pending)  # shown until Delete or Keep them (closing it with × keeps them too)

if len(selected) >= 2:
    st.subheader("Compare selected")
    cards = [by_id[i].card for i in selected]
    labels = [f"{c['config'].get('method')} ({i})" for c, i in zip(cards, selected, strict=True)]
    figs = [f for f in (plots.cards_tradeoff(cards, labels), plots.cards_accuracy(cards, labels)) if f is not None]
    if not figs:
        st.caption("The selected runs are experiments (Compare, Sequential, Sensitivity): reopen them one at a time.")
    for i, fig in enumerate(figs):
        st.plotly_chart(fig, width="stretch", key=f"{PREFIX}.selected.{i}")

st.subheader("Reopen a run")
ids = list(by_id)
choice = st.selectbox(
    "Run", ids, format_func=lambda i: f"{i} — {by_id[i].method} on {by_id[i].dataset}/{by_id[i].model}, "
                                      f"forget {by_id[i].forget}",
    index=ids.index(selected[0]) if selected else 0, key=f"{PREFIX}.open")
stored = by_id[choice]  # listed without weights; the download below fetches them on demand
card = stored.card
target, query = ui_state.reopen_link(card, stored.kind)
page_name = {"forget_size": "Forget-set size"}.get(target.removeprefix("pages/").removesuffix(".py"),
                                                   target.removeprefix("pages/").removesuffix(".py").capitalize())


def open_on_page() -> None:
    """Load the run's configuration into its page (Explore, or the experiment page it came from) and go there:
    the page's state is dropped so that it reads the link as a first visit."""
    prefix = target.removeprefix("pages/").removesuffix(".py")
    for key in [k for k in st.session_state if str(k).startswith((f"{prefix}.", "frontier."))]:
        del st.session_state[key]
    st.session_state.pop("shared_config", None)
    st.switch_page(target, query_params=query)


if st.button(f"Open in {page_name}", icon=":material/open_in_new:", key=f"{PREFIX}.reopen",
             help="Loads this run's whole configuration (data, model, forget set, method and its settings, the "
                  "page's own settings) into the page it came from; press Run there to recompute or change it."):
    open_on_page()
if "experiment" in card:
    exp = card["experiment"]
    df = pd.DataFrame(exp["rows"], columns=exp["columns"])
    st.caption(f"A {exp['kind']} experiment over seeds {exp['seeds']}: every row (every seed) below.")
    st.dataframe(fmt.display_frame(df, {}), width="stretch", hide_index=True)  # "—", never "None"
    downloads.experiment_downloads(PREFIX, df, card, figures=results.experiment_figures(PREFIX, exp["kind"], df),
                                  name=f"run-{stored.id}")
else:
    results.verdict_box(card)
    results.accuracy_dataframe(card)
    results.certificate_card(card)
    results.headline_metrics(card)
    figs = {title: fig for title, make in plots.CARD_FIGURES.items() if (fig := make(card)) is not None}
    for i in range(0, len(figs), 2):
        for col, (title, fig) in zip(st.columns(2), list(figs.items())[i : i + 2], strict=False):
            col.plotly_chart(fig, width="stretch", key=f"{PREFIX}.open.{title}")
    weights = (lambda: downloads.load_weights_bytes(stored.id)) if stored.has_weights else None
    downloads.downloads(PREFIX, card, figures=figs, weights=weights, name=f"run-{stored.id}")
with st.expander("Run card (JSON)"):
    st.json(card, expanded=False)
