"""The dashboard's page helpers (Streamlit): what the pages in ``pages/`` share.

They live outside ``pages/`` so that only real pages are there: :mod:`dashboard.common` (job registry, run store,
session id, widget keys, the one-line error), :mod:`dashboard.widgets` (configuration widgets from the schema),
:mod:`dashboard.status` (jobs: submission, polling, heartbeat), :mod:`dashboard.results` (verdict, certificate card,
tables, figures) and :mod:`dashboard.downloads` (CSV, JSON, HTML report, weights).
"""
