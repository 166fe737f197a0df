"""A minimal page over the dashboard's real job panel, for the poll/finish race stress test.

Each click on Run submits a job that reports progress and finishes after a random delay (a random moment
relative to the poller's 0.5-s ticks); the page must then show ``Result <n>``.
"""

from __future__ import annotations

import os
import random
import time

import streamlit as st

from dashboard import common, status

st.title("Job race")
if st.button("Run", key="race.run"):
    n = st.session_state["race.n"] = st.session_state.get("race.n", 0) + 1
    delay = float(os.environ.get("RACE_DELAY", "0")) or random.Random(n).uniform(0.05, 1.5)

    def work(progress, cancel, n=n, delay=delay):
        start = time.time()
        epoch = 0
        while time.time() - start < delay:
            epoch += 1
            progress({"stage": "train", "epoch": epoch, "epochs": 100, "loss": 1.0 / epoch})
            time.sleep(0.02)
        return n

    status.submit("race", f"race-{n}-{time.time_ns()}", work, label=f"job {n}")
status.job_panel("race", on_done=lambda job: st.subheader(f"Result {job.result}"))
st.caption(f"session {common.session_id()}")
