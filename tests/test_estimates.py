"""Work estimates before any work, a time on this device before Run, and an ETA that converges (issue 24, #20
item 14).

* The estimate counts the method's own work — fine-tuning epochs × steps, the noisy phase's T, LiSSA's depth, the
  exact solver's p HVPs, sequential requests × retrains, L-BFGS's ``max_iter`` — checked against counts written
  out here from the definitions (an independent arithmetic, not the estimator's own functions).
* Work far beyond the limits is refused in one line before anything runs: runs and whole experiments.
* The device's speed is measured, stored and found again; a page never measures on its thread.
* The ETA starts from the estimate and converges to the true end (fake clock), where the old rule did not.
* Explore shows the estimate beside Run before it is pressed, and its job starts its ETA from it (AppTest).
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import pytest
import streamlit as st
from timeouts import scaled

from unlearn_core import limits
from unlearn_core.cli import main
from unlearn_core.data import get_dataset_info
from unlearn_core.pipeline import RunConfig, validate_config
from unlearn_core.preflight import config_shape, estimate_run
from unlearn_core.unlearners import get_unlearner

ROOT = Path(__file__).resolve().parents[1]


def _estimate(**kwargs):
    config = RunConfig(**kwargs)
    params = validate_config(config)
    return estimate_run(config, get_unlearner(config.method), params), config


def _fwd(config: RunConfig) -> float:
    """Forward flops per example of the digits MLP, written out: 2 × Σ fan_in × fan_out of its linear layers."""
    widths = [64, *config.hidden, 10]
    return 2.0 * sum(a * b for a, b in itertools.pairwise(widths))


def test_the_estimate_counts_the_methods_own_work_against_counts_written_out() -> None:
    n_train, n_test = get_dataset_info("digits").n_train, get_dataset_info("digits").n_test
    n_forget = round(0.1 * n_train)
    n_retain = n_train - n_forget

    est, config = _estimate(dataset="digits", model="mlp", method="finetune", forget="random:0.1",
                            params={"epochs": 7, "batch_size": 32})
    fwd = _fwd(config)
    assert config_shape(config).flops == pytest.approx(fwd, rel=0.02)  # the shape counts what we count here
    assert est.work["unlearn"][1] == 7 * math.ceil(n_retain / 32)  # steps: epochs × ⌈n_r / batch⌉
    assert est.work["unlearn"][0] == pytest.approx(3 * fwd * n_retain * 7, rel=0.02)  # forward + backward
    # training: the recipe's 20 epochs of batch 128, on D and on D_r
    assert est.work["train"][1] == 20 * math.ceil(n_train / 128)
    assert est.work["retrain"][1] == 20 * math.ceil(n_retain / 128)
    assert est.work["metrics"][0] == pytest.approx(3 * fwd * (n_train + n_test), rel=0.02)

    double, _ = _estimate(dataset="digits", model="mlp", method="finetune", forget="random:0.1",
                          params={"epochs": 14, "batch_size": 32})
    assert double.work["unlearn"][1] == 2 * est.work["unlearn"][1]

    noisy, _ = _estimate(dataset="digits", model="mlp", method="noisy_finetune", forget="random:0.1",
                         params={"T": 300, "finetune_epochs": 2, "batch_size": 64})
    assert noisy.work["unlearn"][1] == 300 + 2 * math.ceil(n_retain / 64)

    lissa, _ = _estimate(dataset="digits", model="mlp", method="certified_newton", forget="random:0.1",
                         params={"depth": 200, "reps": 3, "batch": 5})
    assert lissa.work["unlearn"][0] >= 6 * fwd * 200 * 3 * 5  # every LiSSA draw is a Hessian-vector product
    p = config_shape(config).num_params
    exact, _ = _estimate(dataset="digits", model="mlp", method="certified_newton", forget="random:0.1",
                         params={"solver": "exact"})
    assert exact.work["unlearn"][0] >= 6 * fwd * n_retain * p + p**3 / 3  # p full-data HVPs and the factorisation

    one, _ = _estimate(dataset="digits", model="mlp", method="certified_newton", forget="random:0.1",
                       params={"requests": 4})
    retrains, _ = _estimate(dataset="digits", model="mlp", method="certified_newton", forget="random:0.1",
                            params={"requests": 4, "retrain_each_step": True})
    assert retrains.work["unlearn"][1] - one.work["unlearn"][1] == 3 * 20 * math.ceil(n_retain / 128)

    convex, config = _estimate(dataset="digits", model="logreg", method="retrain", forget="random:0.1")
    max_iter = config.train.max_iter
    per_example = config_shape(config).flops  # 2·64·10 multiply-adds and the bias: its own count, tested elsewhere
    assert per_example == pytest.approx(2 * 64 * 10, rel=0.06)
    assert convex.work["train"][0] == pytest.approx(1.25 * max_iter * 3 * per_example * n_train)
    assert convex.caps and "L-BFGS" in convex.caps[0]  # an upper bound, and said so


@pytest.mark.parametrize(("argv", "fragments"), [
    (["run", "--dataset", "cifar10", "--model", "allcnn", "--epochs", "1000"],
     ["the run (dataset=cifar10 model=allcnn", "even on a fast CPU", "largest part: train",
      "above the limit of 7 days (UNLEARN_MAX_HOURS overrides)"]),
    (["run", "--dataset", "cifar10", "--model", "allcnn", "--epochs", "1", "--method", "noisy_finetune", "--set",
      "finetune_epochs=1000", "--set", "batch_size=1"], ["largest part: unlearn", "above the limit of 7 days"]),
    (["experiment", "audit", "--dataset", "mnist", "--runs", "1000000"],
     ["experiment audit (1 seed) needs an estimated", "largest part: unlearn", "above the limit of 168 h"]),
    (["experiment", "sequential", "--dataset", "mnist", "--model", "cnn", "--epochs", "1000", "--requests", "100",
      "--set", "retrain_each_step=true"], ["largest part: unlearn", "above the limit"]),
])
def test_work_far_beyond_the_limits_is_refused_in_one_line_before_anything_runs(argv, fragments, tmp_path,
                                                                               capsys) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    extra = ["--quiet", "--cache-dir", str(cache), *(["--out", str(out)] if argv[0] == "experiment" else [])]
    try:
        code = main([*argv, *extra])
    except SystemExit as exc:
        code = int(exc.code)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not cache.exists() and not out.exists()


def test_the_limit_can_be_raised_for_a_machine_meant_to_run_that_long(monkeypatch) -> None:
    config = RunConfig(dataset="cifar10", model="allcnn", method="finetune", params={"epochs": 1000, "batch_size": 1})
    with pytest.raises(Exception, match="above the limit of 7 days"):
        validate_config(config)
    monkeypatch.setenv(limits.MAX_RUN_HOURS_ENV, "1000000")
    validate_config(config)
    monkeypatch.setenv(limits.MAX_RUN_HOURS_ENV, "soon")
    with pytest.raises(Exception, match="UNLEARN_MAX_HOURS='soon' is not valid"):
        validate_config(config)


def test_the_device_is_measured_once_stored_and_found_again(tmp_path, monkeypatch) -> None:
    from unlearn_core import device_time

    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(device_time, "_MEMO", {})
    assert device_time.calibrate(None, measure=False) is None  # a page never measures
    calls = []
    monkeypatch.setattr(device_time, "_measure", lambda device: calls.append(device) or (1e-4, 1e9))
    first = device_time.calibrate(None)
    assert (first.step_s, first.flops_per_s) == (1e-4, 1e9) and calls == [None]
    monkeypatch.setattr(device_time, "_MEMO", {})  # another process: from the file, not measured again
    assert device_time.calibrate(None, measure=False) == first and calls == [None]
    assert first.seconds(2e9, 1e4) == pytest.approx(2.0 + 1.0)  # flops / rate + steps × overhead
    monkeypatch.setattr(device_time, "_MEMO", {})
    monkeypatch.setattr(device_time.time, "time", lambda: first.measured_at + device_time.MAX_AGE_S + 1)
    device_time.calibrate(None)
    assert len(calls) == 2  # a week later: measured again


def test_the_measured_model_of_time_predicts_a_real_step_within_a_factor() -> None:
    """The calibration's two parameters, measured here, predict a third training step it never saw (a mid-size MLP)
    within a factor of three — side by side on this machine, whatever its load."""
    import torch
    from torch import nn

    from unlearn_core import device_time

    cal = device_time.calibrate(None, refresh=True)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    x, y = torch.randn(128, 256), torch.randint(0, 10, (128,))
    opt = torch.optim.Adam(model.parameters())
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    tic = time.perf_counter()
    for _ in range(20):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    actual = (time.perf_counter() - tic) / 20
    predicted = cal.seconds(3 * 2 * (256 * 256 + 256 * 10) * 128, 1)
    assert 1 / 3 < actual / predicted < 3, (actual, predicted)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _simulate(monkeypatch, prediction):
    """A run whose stages take 4 s (train), 4 s (retrain), 12 s (unlearn) of true time — twice the prediction
    below — reporting ten progress records per stage; returns (true end, ETA samples as (time, eta))."""
    from unlearn_core.service import jobs

    clock = _Clock()
    monkeypatch.setattr(jobs.time, "time", clock)
    job = jobs.Job(key="k", label="x", fn=lambda p, c: None, state=jobs.RUNNING,
                   meta={"prediction": prediction} if prediction else {})
    start = clock.now
    job.report({"stage": "data"})
    samples = []
    for stage, seconds, unit in (("train", 4.0, "epoch"), ("retrain", 4.0, "epoch"), ("unlearn", 12.0, "step")):
        for i in range(1, 11):
            clock.now += seconds / 10
            record = {"stage": stage, unit: i, f"{unit}s": 10}
            job.report(record)
            eta, _ = job.eta_s(clock.now)
            samples.append((clock.now - start, eta))
    return clock.now - start, samples


def test_the_eta_starts_from_the_estimate_and_converges_to_the_true_end(monkeypatch) -> None:
    """True durations are twice the prediction (a busier machine than when it was measured). The ETA's error at
    20 %, 50 % and 80 % of the run shrinks, and is small from the middle on; the rule without a prediction
    ("unlearning ≈ retraining") is off by the unlearning stage's true length until that stage runs."""
    prediction = {"train": 2.0, "retrain": 2.0, "unlearn": 6.0, "metrics": 0.01}
    end, samples = _simulate(monkeypatch, prediction)
    _, plain = _simulate(monkeypatch, None)

    def error_at(share: float, rows) -> float:
        t, eta = min(rows, key=lambda row: abs(row[0] - share * end))
        return abs((t + eta) - end) / end

    errors = [error_at(share, samples) for share in (0.2, 0.5, 0.8)]
    assert errors[0] < 0.25 and errors[1] < 0.05 and errors[2] < 0.05, errors
    assert errors[2] <= errors[0] + 1e-9
    assert error_at(0.2, plain) > 0.25  # unlearning ≈ retraining: 4 s where it takes 12 s


@pytest.fixture
def measured_dashboard(tmp_path, monkeypatch):
    """A dashboard process as the warm-up thread leaves it: its own cache, this device measured
    (:func:`calibrate_for_jobs`, once per process); afterwards every job stopped and Streamlit's caches emptied."""
    from unlearn_core.service.jobs import calibrate_for_jobs, shutdown_all

    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_resource.clear()
    st.cache_data.clear()
    calibrate_for_jobs()
    try:
        yield
    finally:
        shutdown_all(timeout=scaled(60))
        st.cache_resource.clear()
        st.cache_data.clear()


def test_explore_shows_the_estimate_beside_run_before_it_is_pressed(measured_dashboard, shared_data) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=scaled(60))
    at.query_params.update({"dataset": "mnist", "model": "cnn", "method": "finetune", "epochs": "20"})
    at.run()
    assert not at.exception, at.exception
    (caption,) = [c.value for c in at.caption if "Estimated time" in c.value]
    assert "on this device" in caption and "train" in caption and "retrain" in caption, caption
    prediction = at.session_state["explore._estimate"][1]
    # 20 epochs of training on 60,000 points against finetune's 5 on the 54,000 retained: about 4.4 ×
    assert 3.5 < prediction["train"] / prediction["unlearn"] < 5.5, prediction
    quick = AppTest.from_file(str(ROOT / "app.py"), default_timeout=scaled(60))
    quick.query_params.update({"preset": "quick-demo"})
    quick.run()
    quick.button(key="FormSubmitter:explore.form-Run").click().run()
    from dashboard.common import get_registry

    (job,) = get_registry().jobs()
    assert set(job.meta["prediction"]) >= {"train", "retrain", "unlearn"}  # the ETA starts from the estimate
    assert job.meta["page"] == "explore" and job.meta["query"]


def test_no_estimate_is_claimed_for_a_configuration_that_cannot_run(measured_dashboard, tmp_path, monkeypatch) -> None:
    """A dataset whose files are missing: the page says so (the missing-data notice) and shows no estimate — it
    said "measuring this device's speed…" forever, although the device was measured."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path / "no-data"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=scaled(60))
    at.query_params.update({"dataset": "mnist", "model": "cnn", "method": "finetune"})
    at.run()
    assert not at.exception, at.exception
    assert any("mnist: no data on this machine" in w.value for w in at.warning)
    assert not [c.value for c in at.caption if "Estimated time" in c.value]


@pytest.mark.parametrize("page", ["pages/compare.py", "pages/sequential.py", "pages/sensitivity.py",
                                  "pages/forget_size.py"])
def test_every_experiment_page_shows_its_estimate_before_run(page, measured_dashboard) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=scaled(60))
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption if "Estimated time" in c.value]
    assert len(captions) >= 1 and all("on this device" in c for c in captions), [c.value for c in at.caption]


def test_the_field_evaluation_is_estimated_by_its_models_and_refused_far_beyond_the_limits() -> None:
    """``experiment compare --scores`` estimates its many-model evaluation like every experiment: the trainings grow
    with N retrained + M shadow models (twice with the controls), each certified method's runs with 2N + M; and
    N = 10⁹ models is refused in one line before any work."""
    from unlearn_core.errors import ConfigError
    from unlearn_core.experiment_options import check_experiment_estimate, experiment_estimate

    base = RunConfig(dataset="digits", model="logreg", forget="random:0.1", method="noisy_finetune")

    def work(stage: str, **options) -> float:
        est = experiment_estimate("evaluate", base, seeds=(0,), methods=["noisy_finetune"], **options)
        return est.work[stage][1]  # steps

    one = work("retrain", models=1, shadows=0, controls=False)
    assert work("retrain", models=8, shadows=8, controls=False) == pytest.approx(16 * one)
    assert work("retrain", models=8, shadows=8, controls=True) == pytest.approx(32 * one)
    unlearn_one = work("unlearn", models=1, shadows=0, controls=False) / 2  # released + noisy retrain
    assert work("unlearn", models=4, shadows=2, controls=False) == pytest.approx((2 * 4 + 2) * unlearn_one)
    with pytest.raises(ConfigError, match=r"^experiment evaluate \(1 seed\) needs an estimated"):
        check_experiment_estimate("evaluate", base, seeds=(0,), methods=["noisy_finetune"], models=10**9, shadows=0)
