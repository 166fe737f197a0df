"""The dashboard's page shape over a fake job, for the poll/finish race stress test: widgets seeded from the URL
into session state (as ``init_page`` does), a form with a Run button, an expander, the real job panel, and a line
that prints the widgets' values on every full run, so a driver can see whether they survived."""

from __future__ import annotations

import os
import random
import time

import streamlit as st

from dashboard import status

ss = st.session_state
if not ss.get("w._init"):
    ss["w.epochs"], ss["w.lr"], ss["w.model"], ss["w.hidden"] = 20, 0.001, "mlp", "32-32"
    ss["w._init"] = True
st.title("Widget race")
c1, c2 = st.columns(2)
c1.number_input("Epochs", min_value=0, max_value=1000, step=1, key="w.epochs")
c2.selectbox("Model", ["logreg", "mlp", "cnn"], key="w.model")
if ss["w.model"] == "mlp":
    st.text_input("Hidden", key="w.hidden")
with st.expander("Recipe"):
    st.number_input("Learning rate", min_value=1e-6, max_value=10.0, format="%g", key="w.lr")
with st.form("w.form"):
    submitted = st.form_submit_button("Run")
values = (ss.get("w.epochs"), ss.get("w.model"), ss.get("w.hidden"), ss.get("w.lr"))
st.caption(f"values {values}")
if submitted:
    n = ss["w.n"] = ss.get("w.n", 0) + 1
    delay = float(os.environ.get("RACE_DELAY", "0")) or random.Random(n).uniform(0.05, 3.0)

    def work(progress, cancel, n=n, delay=delay):
        start, epoch = time.time(), 0
        while time.time() - start < delay:
            epoch += 1
            progress({"stage": "train", "epoch": epoch, "epochs": 100, "loss": 1.0 / epoch})
            time.sleep(0.02)
        return n

    status.submit("w", f"w-{n}-{time.time_ns()}", work, label=f"job {n}")
status.job_panel("w", on_done=lambda job: st.subheader(f"Result {job.result}"))
