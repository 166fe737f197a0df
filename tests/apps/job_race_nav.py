"""The job race harness as the second page of a multipage app (st.navigation), as the dashboard's pages are."""

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent
page = st.navigation([st.Page(lambda: st.title("Home"), title="Home", url_path="home", default=True),
                      st.Page(str(HERE / "job_race.py"), title="Race", url_path="race")], position="top")
page.run()
