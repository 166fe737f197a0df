"""The service layer the dashboard calls: UI-free (it never imports streamlit), above the engine.

* :mod:`~unlearn_core.service.jobs` — the background job registry (dedup, device queue, watchers, cancel);
* :mod:`~unlearn_core.service.tasks` — the job bodies (one run; one experiment over seeds);
* :mod:`~unlearn_core.service.runstore` — the run history (SQLite, with the unlearned weights);
* :mod:`~unlearn_core.service.ui_state` — the dashboard's configuration state: deep links, presets, the flat
  configuration, all generated from the run configuration's schema (:mod:`unlearn_core.config`).

Nothing in the maths, the pipeline or the experiments imports this package.
"""
