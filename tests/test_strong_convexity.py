"""Certified Newton, certified and useful on convex models (issue 19): ``bound=strong_convexity``.

The bound ‖w̃ − w*_r‖ ≤ ‖∇L(w̃, D_r)‖/μ is checked against an independent float64 L-BFGS retrain (SciPy on a softmax
regression written here) over many random forget sets; the issue's target — digits logistic regression,
5 % and 10 points forgotten, ε = 1, δ = 1e-5: certified, every constant a bound, test accuracy within 2 points of
retraining — through the CLI and ``pipeline.run``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from unlearn_core.certificate import Certificate
from unlearn_core.errors import ConfigError
from unlearn_core.forget import select_forget
from unlearn_core.functional import get_flat_params
from unlearn_core.pipeline import RunConfig, prepare, run, validate_config
from unlearn_core.training import TrainConfig
from unlearn_core.unlearners.certified_newton import newton_to_budget

pytestmark = pytest.mark.usefixtures("one_thread")

WD = 5e-3
CONVEX = {"bound": "strong_convexity", "solver": "exact", "lam": 0.0, "epsilon": 1.0, "delta": 1e-5}


def _config(forget: str, **params) -> RunConfig:
    return RunConfig(dataset="digits", model="logreg", forget=forget, method="certified_newton",
                     params={**CONVEX, **params}, train=TrainConfig(weight_decay=WD), reproducible=True)


def _reference_objective(x: torch.Tensor, y: torch.Tensor, num_classes: int, mu: float):
    """Mean cross-entropy of softmax regression + (μ/2)‖(W, b)‖² and its gradient, written out here (not the
    package's ``functional``), for SciPy: flat float64 NumPy in, (value, gradient) out, order [W row-major, b].
    Torch, not NumPy, for the arithmetic: NumPy's BLAS threads make it 60× slower on a busy 2-core machine."""
    n, d = x.shape
    onehot = torch.nn.functional.one_hot(y, num_classes).double()

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.from_numpy(theta)
        w, b = t[: num_classes * d].reshape(num_classes, d), t[num_classes * d :]
        logp = torch.log_softmax(x @ w.T + b, dim=1)
        loss = -(onehot * logp).sum() / n + 0.5 * mu * float(t @ t)
        r = (logp.exp() - onehot) / n
        grad = torch.cat([(r.T @ x).reshape(-1), r.sum(dim=0)]) + mu * t
        return float(loss), grad.numpy()

    return f


def test_bound_covers_the_exact_retrain_over_random_forget_sets() -> None:
    """For 6 random forget sets and 0, 1, 2 Newton steps: ‖w̃ − w_ref‖ ≤ bound + ‖∇F(w_ref)‖/μ, where w_ref is SciPy's
    float64 L-BFGS minimiser of the retain objective and the last term its own distance to the exact minimiser."""
    prepared = prepare(_config("random:0.05"))
    data, original = prepared.data, prepared.original
    x_all = data.x_train.reshape(data.n_train, -1).double()
    checked = 0
    for seed in range(6):
        _, retain = select_forget("random:0.05", data.y_train, seed=100 + seed, num_classes=10)
        x_r, y_r = data.x_train[retain], data.y_train[retain]
        f = _reference_objective(x_all[retain], data.y_train[retain], 10, WD)
        start = get_flat_params(original).double().numpy()
        ref = minimize(f, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 0.0, "maxiter": 5000})
        ref_error = float(np.linalg.norm(f(ref.x)[1])) / WD  # the reference's own distance to argmin
        assert ref_error < 1e-5
        out = newton_to_budget(original, x_r, y_r, mu=WD, lam=0.0, budget=0.0, max_steps=2)
        assert out.steps == 2 and len(out.trace) == len(out.iterates) == 3
        for steps, (weights, bound) in enumerate(zip(out.iterates, out.trace, strict=True)):
            actual = float(np.linalg.norm(weights.double().numpy() - ref.x))
            assert actual <= bound + ref_error, (seed, steps, actual, bound)
            checked += 1
        assert out.trace[0] > 10 * out.trace[1] > 100 * out.trace[2]  # Newton converges; the second step matters
    assert checked == 18


def test_convex_target_through_the_cli(tmp_path) -> None:
    """digits logreg (wd 5e-3), random:0.05, ε = 1, δ = 1e-5: certified, every constant a bound, test accuracy within
    2 points of retraining, the unlearning and retraining times in the card."""
    card_path = tmp_path / "card.json"
    args = [sys.executable, "-m", "unlearn_core", "run", "--dataset", "digits", "--model", "logreg",
            "--weight-decay", str(WD), "--forget", "random:0.05", "--method", "certified_newton", "--quiet",
            "--cache-dir", str(tmp_path), "--json", str(card_path)]
    args += [a for k, v in CONVEX.items() for a in ("--set", f"{k}={v}")]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    card = json.loads(card_path.read_text())
    cert = Certificate.from_dict(card["certificate"])
    assert cert.status == "certified" and all(c.tag == "bound" for c in cert.constants), cert.reason
    assert "certificate: certified at (ε, δ) = (1, 1e-05)" in out.stdout
    models = card["models"]
    assert abs(models["unlearned"]["acc_test"] - models["retrained"]["acc_test"]) <= 0.02
    assert card["timing_s"]["unlearn"] > 0 and card["timing_s"]["retrain"] > 0
    sc = card["diagnostics"]["details"]["strong_convexity"][0]
    assert sc["bound"] <= sc["budget"] and sc["newton_steps"] >= 1 and not sc["retrained_fallback"]
    # The release is the noise-free estimate plus N(0, σ²I), σ from (ε, δ, Δ budget) alone.
    assert cert.sensitivity == pytest.approx(1e-3) and cert.sigma_used == pytest.approx(3.7306e-3, rel=1e-3)


def test_convex_target_ten_points_and_the_retraining_fallback() -> None:
    ten = run(_config("indices:" + ",".join(str(i) for i in range(0, 100, 10))))
    card = ten.card
    cert = Certificate.from_dict(card["certificate"])
    assert card["data"]["n_forget"] == 10 and cert.status == "certified"
    assert abs(card["models"]["unlearned"]["acc_test"] - card["models"]["retrained"]["acc_test"]) <= 0.02
    # One Newton step cannot fit a 1e-4 budget: the model is retrained (and said so), and still released certified.
    fallback = run(_config("random:0.05", max_newton_steps=1, sensitivity_budget=1e-4)).card
    details = fallback["certificate"]["details"]
    assert details["retrained"] is True and fallback["certificate"]["status"] == "certified"
    assert any("retrained" in note for note in fallback["certificate"]["notes"])


def test_strong_convexity_refused_on_a_model_whose_loss_is_not_convex() -> None:
    """Refused at the entry (the CLI's and the dashboard's one validation), before anything is trained."""
    config = dataclasses.replace(_config("random:0.05"), model="mlp")
    with pytest.raises(ConfigError, match=r"bound=strong_convexity needs .* model logreg"):
        validate_config(config)


def test_sequential_requests_under_strong_convexity_keep_one_sigma() -> None:
    card = run(dataclasses.replace(_config("random:0.05", requests=2))).card
    assert card["certificate"]["details"]["per_request_status"] == ["certified", "certified"]
    sigmas = {r["sigma_used"] for r in card["diagnostics"]["requests"]}
    assert len(sigmas) == 1 and torch.isfinite(torch.tensor(list(sigmas))).all()
