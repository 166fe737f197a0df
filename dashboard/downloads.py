"""Downloads of a result: the results CSV, the JSON run card, a self-contained HTML report with the figures, and
the unlearned weights."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.common import get_store, state_key
from dashboard.results import accuracy_display, accuracy_table
from unlearn_core import formatting as fmt
from unlearn_core import report
from unlearn_core.certificate import certificate_from_card
from unlearn_core.service.runstore import card_row, rows_to_csv
from unlearn_core.verdict import verdict_from_card


def html_report(title: str, card: Mapping[str, Any], figures: Mapping[str, Any]) -> str:
    """A self-contained HTML report (:func:`unlearn_core.report.html_document`: plotly.js embedded once, opens
    offline): the verdict, the accuracy table, the certificate, the experiment's rows, the interactive figures and
    the run card. Everything from the card is escaped: a card is data (a label, a forget spec, a note), never
    markup."""
    sections: list[tuple[str, str]] = []
    verdict = verdict_from_card(card)
    if verdict is not None:
        sections.append(("Verdict", "<p><b>" + report.text(verdict.headline) + "</b></p><ul>"
                         + "".join(f"<li><b>{report.text(a.question)}</b> {report.text(a.detail)}</li>"
                                   for a in verdict.answers)
                         + "</ul><p><i>" + report.text(verdict.rules) + "</i></p>"))
    if card.get("models"):
        sections.append(("Accuracy", accuracy_display(accuracy_table(card)).to_html()))
    cert = certificate_from_card(dict(card)) if "certificate" in card else None
    if cert is not None:
        sections.append(("Certificate", "<p><b>" + report.text(cert.headline()) + "</b></p>"
                         + pd.DataFrame([{"holds": "yes" if c.holds else "NO", "condition": c.statement,
                                          "this run": c.value, "needs": c.requirement,
                                          "fix": "" if c.holds else c.fix}
                                         for c in cert.conditions]).to_html(index=False)
                         + pd.DataFrame([{"constant": c.name, "value": fmt.sig(c.value, 4), "tag": c.tag, "how": c.how}
                                         for c in cert.constants]).to_html(index=False)))
    experiment = card.get("experiment")
    if isinstance(experiment, Mapping) and experiment.get("rows"):
        rows = pd.DataFrame(experiment["rows"], columns=experiment.get("columns"))
        sections.append((f"Rows ({len(rows)})", rows.to_html(index=False, na_rep="—")))
    return report.html_document(title, sections, figures, tail=[("Run card", report.json_block(card))])


def _card_buttons(prefix: str, c_json: Any, c_html: Any, card: Mapping[str, Any], *, figures: Mapping[str, Any],
                  name: str, title: str, json_label: str) -> None:
    """The JSON card and the HTML report (with the figures) buttons that every result offers."""
    c_json.download_button(json_label, data=lambda: json.dumps(card, indent=2, default=str),
                           file_name=f"{name}-card.json", mime="application/json", on_click="ignore",
                           key=state_key(prefix, "dl.json"), icon=":material/data_object:")
    c_html.download_button("HTML report", data=lambda: html_report(title, card, figures),
                           file_name=f"{name}-report.html", mime="text/html", on_click="ignore",
                           key=state_key(prefix, "dl.html"), icon=":material/description:")


def downloads(prefix: str, card: Mapping[str, Any], *, figures: Mapping[str, Any], weights: Callable[[], bytes] | None,
              name: str) -> None:
    """CSV of the results, the JSON run card, an HTML report with the figures, and the unlearned weights."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    c1, c2, c3, c4 = st.columns(4)
    rows = [card_row(c) for c in card["runs"]] if "runs" in card else [card_row(dict(card))]
    c1.download_button("Results CSV", data=lambda: rows_to_csv(rows), file_name=f"{name}.csv",
                       mime="text/csv", on_click="ignore", key=state_key(prefix, "dl.csv"), icon=":material/table:")
    _card_buttons(prefix, c2, c3, card, figures=figures, name=name, json_label="JSON run card",
                  title=f"unlearn-explorer: {name} ({stamp})")
    if weights is not None:
        c4.download_button("Unlearned weights", data=weights, file_name=f"{name}-unlearned.pt",
                           mime="application/octet-stream", on_click="ignore", key=state_key(prefix, "dl.pt"),
                           icon=":material/download:")


def load_weights_bytes(run_id: str) -> bytes:
    stored = get_store().get(run_id)
    return stored.weights or b""


def experiment_downloads(prefix: str, df: pd.DataFrame, card: Mapping[str, Any], *, figures: Mapping[str, Any],
                         name: str) -> None:
    """The experiment's tidy rows as CSV, its JSON card, and an HTML report with the figures."""
    c1, c2, c3 = st.columns(3)
    c1.download_button("Results CSV (every seed)", data=lambda: df.to_csv(index=False), file_name=f"{name}.csv",
                       mime="text/csv", on_click="ignore", key=state_key(prefix, "dl.csv"), icon=":material/table:")
    _card_buttons(prefix, c2, c3, card, figures=figures, name=name, json_label="JSON card",
                  title=f"unlearn-explorer: {name}")
