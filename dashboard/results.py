"""Drawing a result: the verdict, the certificate card, accuracy tables, headline metrics and experiment figures.

Everything is read from the JSON run card (or an experiment's tidy rows), so a stored run looks as it did live.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.common import state_key
from unlearn_core import formatting as fmt
from unlearn_core import plots
from unlearn_core.certificate import (
    CERTIFIED,
    NOT_CERTIFIED,
    STATUSES,
    UNDER_ASSUMPTIONS,
    certificate_from_card,
)
from unlearn_core.privacy.noise import SIMULATION_LABEL, SIMULATION_WHY
from unlearn_core.verdict import COLOUR_RULE, Verdict, infinite_cause, verdict_from_card


def _fmt(value: Any, digits: int = 4) -> str:
    """A number for a page (:mod:`unlearn_core.formatting`: significant digits, ∞, "—" for missing)."""
    if isinstance(value, str):
        return value
    return fmt.sig(value, digits)


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
    return fmt.percent(value)


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
    # Short headers and one loss column: at 1024 px the table shares its row with the certificate card, and a
    # separate "loss test" column was cut off (issue 20).
    losses = [c for c in shown.columns if c.startswith("loss")]
    if losses:
        shown["loss (forget / retain / test)"] = [" / ".join(str(v) for v in row) for row in shown[losses].itertuples(
            index=False)]
        shown = shown.drop(columns=losses)
    config: dict[str, Any] = {c: st.column_config.NumberColumn(c.replace("acc ", ""), format="percent", width="small")
                              for c in shown.columns if c.startswith("acc")}
    st.dataframe(shown, column_config=config, width="stretch")
    st.caption("Accuracy (%) on the forget, retain and test sets, and the cross-entropy loss on each.")


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
        if verdict.distance_note:
            st.markdown(f"**Distance to the retrained model:** {verdict.distance_note}")
        st.markdown(f"**{COLOUR_RULE.split(':', 1)[0]}:**{COLOUR_RULE.split(':', 1)[1]}")
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
        if cert.simulation:  # reproducible mode: the noise can be regenerated from the run card
            st.warning(f"**{SIMULATION_LABEL}** — {SIMULATION_WHY}.", icon=":material/science:")
        if cert.status == NOT_CERTIFIED:
            failing = cert.failing()
            first = failing[0]
            words = "not certified by the bound" if first.name == "noise" else "not certified"
            box(f"**{words}** — {first.statement} fails: {first.value} (needs {first.requirement})."
                + (f" **Fix:** {first.fix}." if first.fix else "")
                + (f" ({len(failing) - 1} more condition(s) fail: see below.)" if len(failing) > 1 else ""),
                icon=icon)
        else:
            box(f"**{cert.status}** at (ε, δ) = ({_fmt(cert.epsilon)}, {cert.delta_guaranteed:.3g})"
                + (f" — given {', '.join(f'{c.name} ({c.tag})' for c in soft)}" if soft else
                   " — every condition checked, every constant a proven bound"), icon=icon)
        if cert.delta_guaranteed != cert.delta:
            st.caption(f"Asked for δ = {cert.delta:.3g}; guaranteed δ = {cert.delta_guaranteed:.3g} "
                       "(δ + ρ: the LiSSA lemma holds with probability 1 − ρ).")
        c1, c2 = st.columns(2)
        c3, c4 = st.columns(2)
        cause = infinite_cause(cert)
        if cert.sensitivity is not None:
            c1.metric("Δ (sensitivity bound)", _fmt(cert.sensitivity, 3), delta=cause, delta_color="off",
                      delta_arrow="off",
                      help="the bound on the distance the noise must hide; ∞ when a hypothesis of the bound fails "
                           "(the failing one is named under the number)")
        else:
            c1.metric("Δ (sensitivity bound)", "n/a", help="this guarantee has no single sensitivity: the noise is "
                      "added at every step (privacy amplification by iteration)")
        c2.metric("σ required", _fmt(cert.sigma_required, 3), help=f"accountant: {cert.accountant}",
                  delta="no finite noise certifies" if math.isinf(cert.sigma_required) else None, delta_color="off",
                  delta_arrow="off")
        c3.metric("σ used", _fmt(cert.sigma_used, 3))
        not_certified = cert.status == NOT_CERTIFIED
        c4.metric("ε certified", "—" if not_certified else _fmt(cert.epsilon_certified, 3),
                  delta="not certified" if not_certified else None, delta_color="off", delta_arrow="off",
                  help="the ε that σ used certifies at δ, by the tightest valid accountant — shown only for a "
                       "certified run (a number beside 'not certified' read as a guarantee)")
        if cert.sigma_required_by:
            st.caption("σ required by accountant: " + ", ".join(f"{k} {_fmt(v)}"
                                                                  for k, v in cert.sigma_required_by.items()))
        if cert.sensitivity_terms:
            st.caption(delta_terms_text(cert.sensitivity_terms, cert.sensitivity))
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


#: The names of Δ's terms on the page (the Learn page's words).
TERM_LABELS = {"exact": "exact", "nonconvergence": "non-convergence (G)", "lissa": "LiSSA", "solve": "residual"}


def delta_terms_text(terms: Mapping[str, float], total: float | None) -> str:
    """Δ as the sum it is, in the Learn page's terms: "Δ = exact 912 + non-convergence (G) 0.11 + LiSSA ∞ = ∞".

    Certified Newton records ``nonconvergence`` as the exact term *plus* G/(λ + λ_min), so the page shows the
    increment; the other terms are added to it (issue 20: the terms read as if additive on Explore but were summed
    differently on Learn)."""
    parts: list[str] = []
    rest = dict(terms)
    if "exact" in rest and "nonconvergence" in rest:
        exact, nc = rest.pop("exact"), rest.pop("nonconvergence")
        parts.append(f"exact {_fmt(exact)}")
        increment = nc - exact if math.isfinite(nc) and math.isfinite(exact) else nc
        parts.append(f"non-convergence (G) {_fmt(increment)}")
    parts += [f"{TERM_LABELS.get(k, k)} {_fmt(v)}" for k, v in rest.items()]
    return "Δ = " + " + ".join(parts) + (f" = {_fmt(total)}" if total is not None else "")


def headline_metrics(card: Mapping[str, Any]) -> None:
    """Distance to the retrained model and unlearning vs retraining time, as metrics."""
    dist = card.get("distance", {})
    timing = card.get("timing_s", {})
    c1, c2 = st.columns(2)
    c3, c4 = st.columns(2)
    verdict = verdict_from_card(card)
    note = verdict.distance_note if verdict is not None else ""
    ratio = verdict.distance_ratio if verdict is not None else None
    c1.metric("‖w_unlearned − w_retrained‖", _fmt(dist.get("unlearned_to_retrained"), 3),
              delta=(f"{fmt.sig(ratio, 2)}× the original's" + (": the noise's" if "noise" in note else ""))
              if ratio is not None else None, delta_color="off", delta_arrow="off",
              help="ℓ2 distance over trainable parameters, in the tooltip's words: " + (note or "—") + " Judged by "
                   "the verdict only against the original's distance (the control); beside a noisy release it "
                   "measures the noise the certificate requires, not a failure to forget.")
    c2.metric("‖w_original − w_retrained‖", _fmt(dist.get("original_to_retrained"), 3),
              help="how far unlearning has to move the model")
    unlearn_s, retrain_s = timing.get("unlearn"), timing.get("retrain")
    c3.metric("unlearning time", f"{unlearn_s:.2f} s" if unlearn_s is not None else "—")
    speed = (retrain_s / unlearn_s) if unlearn_s and retrain_s else None
    if speed is None:
        faster = None
    elif speed >= 1:
        faster = f"unlearning is {speed:.1f}× faster"
    else:
        faster = f"unlearning is {1 / speed:.1f}× slower"
    c4.metric("retraining time", f"{retrain_s:.2f} s" if retrain_s is not None else "—", delta=faster,
              delta_color="off")
    if note:
        st.caption(f"Distance to the retrained model: {note}")
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
            minimiser = None if tol is None else (f"≤ tolerance {tol:g}: a minimiser" if retrained.get("converged")
                                                  else f"> tolerance {tol:g}: not converged")
            c6.metric("retrained model's ‖∇(L + wd/2‖w‖²)‖", _fmt(retrained["grad_norm"], 3), delta=minimiser,
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


def mean_table(df: pd.DataFrame, *, by: str, columns: Mapping[str, str]) -> pd.DataFrame:
    """Mean over seeds of ``columns`` (name → display name) per ``by`` group, in first-seen order."""
    present = [c for c in columns if c in df]
    data = df[[by, *present]].copy()
    agg: dict[str, Any] = {}
    for c in present:
        if c == "status":
            agg[c] = _worst_status
        elif data[c].map(lambda v: isinstance(v, bool)).any():
            data[c] = data[c].map(lambda v: v is True)
            agg[c] = "max"  # a flag (e.g. Δ infinite): true when it is true for any seed
        elif pd.api.types.is_numeric_dtype(data[c]) or data[c].map(lambda v: v is None or isinstance(
                v, (int, float))).all():
            data[c] = pd.to_numeric(data[c], errors="coerce")
            agg[c] = "mean"
        else:
            agg[c] = "first"  # labels such as the method's family
    out = data.groupby(by, sort=False).agg(agg)
    return out.rename(columns=dict(columns))


def display_table(table: pd.DataFrame, *, percent: tuple[str, ...] = (), counts: tuple[str, ...] = (),
                  seconds: tuple[str, ...] = (), infinite: Mapping[str, str] | None = None,
                  cause: pd.Series | None = None) -> pd.DataFrame:
    """A table for a page: every cell display text from :mod:`unlearn_core.formatting` — accuracies in %, counts as
    integers, times with their unit, numbers with 3 significant digits, a missing value "—", and in the columns of
    ``infinite`` (column → the row flag column that says "this is ∞") "∞ (cause)" with the row's ``cause``. Never
    "None", "nan" or 1197183.1094 (issue 20)."""
    out = table.copy()
    flags = {col: out.pop(flag) if flag in out else None for col, flag in (infinite or {}).items()}
    causes = cause.reindex(out.index) if cause is not None else None
    for col, flag in flags.items():
        if col not in out or flag is None:
            continue
        values = []
        for idx, value, is_inf in zip(out.index, out[col], flag, strict=True):
            if is_inf in (True,):  # True or numpy's True; None / NaN / False are not
                why = causes.loc[idx] if causes is not None else None
                values.append(fmt.infinite(why if isinstance(why, str) else None))
            else:
                values.append(fmt.sig(value))
        out[col] = values
    formats: dict[str, Any] = {c: fmt.percent for c in percent}
    formats.update({c: fmt.count for c in counts})
    formats.update({c: fmt.seconds for c in seconds})
    shown = fmt.display_frame(out, formats, keep=tuple(flags))
    # A column with nothing in it (Δ for a method without one, "why not certified" when all are) only takes room.
    empty = [c for c in shown.columns if all(v == fmt.MISSING for v in shown[c])]
    return shown.drop(columns=empty)


def _worst_status(values: pd.Series) -> str:
    """The weakest certificate status over seeds (one uncertified seed makes the row uncertified)."""
    known = [v for v in values if isinstance(v, str)]
    if not known:
        return "—"
    return max(known, key=lambda v: STATUSES.index(v) if v in STATUSES else len(STATUSES))


def experiment_figures(prefix: str, kind: str, df: pd.DataFrame) -> dict[str, Any]:
    """An experiment's figures (those its rows can fill: ``plots.experiment_figures``), drawn; returned for the
    downloads (:func:`dashboard.downloads.experiment_downloads`).

    The experiment pages and the Runs page draw a result the same way, so a stored run looks as it did live.
    """
    figures = plots.experiment_figures(kind, df)
    for title, fig in figures.items():
        st.plotly_chart(fig, width="stretch", key=state_key(prefix, f"fig.{title}"))
    return figures
