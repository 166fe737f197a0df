"""The one typed shape of an unlearner's diagnostics.

Every unlearner returns a :class:`Diagnostics`: the fields that pages, plots, experiments and the CLI read are
declared here once (timings, gradient norms, the approximation error, accuracies of the noise-free estimate, the
LiSSA trace, per-request records, per-step curves), so a page never meets a key whose type differs per method.
What only one method knows goes into ``details`` — shown as raw JSON and never read by a page or a plot.

Why typed records instead of free dicts: the first release let each method return its own dict, and three of ten
methods crashed the results page because the same key (``steps``) held a list in one method and an int in
another. A field here has one type everywhere; ``None`` means "this method does not report it".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from unlearn_core.jsonio import to_jsonable

SPLITS = ("forget", "retain", "test")


@dataclass
class SplitAccuracy:
    """Accuracy on the forget set, the retain set and the test set (fractions in [0, 1])."""

    forget: float
    retain: float
    test: float


@dataclass
class LissaTrace:
    """One LiSSA solve: its settings, cost and the per-repetition norm curve (the convergence plot).

    ``norms[i][r]`` is ‖v_t‖/H of repetition r at recursion step ``norm_steps[i]``: a converging run flattens out.
    """

    scale: float
    depth: int
    reps: int
    batch_size: int
    num_hvps: int
    rep_spread: float
    hvp_backend: str
    ihvp_norm: float
    norm_steps: list[int]
    norms: list[list[float]]
    lambda_max_sampled: float | None = None


@dataclass
class RequestRecord:
    """One deletion request of a sequential run (certified Newton's k requests; k = 1 is a single request).

    ``accuracy`` is the released model's (forget = every point forgotten so far, retain = the current retain set);
    ``accuracy_noiseless`` the noise-free estimate's. ``sensitivity`` is the request's bound Δ (``None`` when it
    does not apply) and ``status`` its certificate status. The distances to the retrained model exist only where
    that request's retrained model was at hand.
    """

    request: int
    n_forget_step: int
    n_forgotten: int
    n_retain: int
    grad_norm: float
    param_norm_start: float
    projected_to_C: bool
    sigma_used: float
    status: str
    accuracy: SplitAccuracy
    grad_norm_after: float | None = None
    step_norm: float | None = None
    sensitivity: float | None = None
    sigma_required: float | None = None
    noise_norm: float | None = None
    accuracy_noiseless: SplitAccuracy | None = None
    approx_error: float | None = None
    released_to_retrained: float | None = None
    start_to_retrained: float | None = None

    def to_row(self) -> dict[str, Any]:
        """The record as one flat table row (the Sequential experiment's columns; ``step`` = the request)."""
        row: dict[str, Any] = {
            "step": self.request, "n_forget_step": self.n_forget_step, "n_forgotten": self.n_forgotten,
            "n_retain": self.n_retain, "param_norm_start": self.param_norm_start,
            "projected_to_C": self.projected_to_C, "grad_norm": self.grad_norm, "grad_norm_after": self.grad_norm_after,
            "step_norm": self.step_norm, "delta_bound": self.sensitivity, "sigma_required": self.sigma_required,
            "sigma_used": self.sigma_used, "status": self.status, "certified": self.status != "not certified",
            "noise_norm": self.noise_norm,
        }
        if self.accuracy_noiseless is not None:
            row.update({f"acc_{s}_noiseless": getattr(self.accuracy_noiseless, s) for s in SPLITS})
        row.update({f"acc_{s}": getattr(self.accuracy, s) for s in SPLITS})
        row.update(approx_error=self.approx_error, released_to_retrained=self.released_to_retrained,
                   start_to_retrained=self.start_to_retrained)
        return row


@dataclass
class CurvePoint:
    """One point of a per-step curve, long format: ``(phase, step, metric, value)``.

    Iterative methods (fine-tuning, gradient ascent, the noisy phase, CureNewton's outer steps) record their curves
    this way, so one figure draws any method's curves.
    """

    phase: str
    step: int
    metric: str
    value: float


@dataclass
class Diagnostics:
    """What an unlearner reports besides its model and certificate (see the module docstring).

    Attributes:
        time_s: wall time spent inside the unlearner.
        phases_s: that time split by phase (gradient, solve, noisy phase, fine-tuning...).
        grad_norm: ‖∇L(w, D_r)‖ (weight decay included) at the start, where the method computes it.
        grad_norm_after: the same at the method's noise-free result.
        retrained_grad_norm: the same at the retrained model (the stationarity floor), when at hand.
        approx_error: ‖w̃ − w̃*‖, the noise-free estimate's distance to the retrained model, when at hand.
        noise_norm: ‖noise‖ added to the parameters (one draw; or the per-step norm times the steps' count).
        noiseless_accuracy: the noise-free estimate's accuracies, for methods that release estimate + noise.
        num_hvps, num_gradients: the cost in Hessian-vector products and full gradients.
        lissa: the first request's LiSSA solve, when LiSSA ran.
        requests: per-request records (certified Newton), in order.
        curve: per-step curves (long format).
        details: method-specific values, JSON-safe; shown raw, never read by pages or plots.
    """

    time_s: float | None = None
    phases_s: dict[str, float] = field(default_factory=dict)
    grad_norm: float | None = None
    grad_norm_after: float | None = None
    retrained_grad_norm: float | None = None
    approx_error: float | None = None
    noise_norm: float | None = None
    noiseless_accuracy: SplitAccuracy | None = None
    num_hvps: int | None = None
    num_gradients: int | None = None
    lissa: LissaTrace | None = None
    requests: list[RequestRecord] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add_curve(self, phase: str, step: int, **metrics: float | None) -> None:
        """Append one step's metrics to :attr:`curve` (``None`` and non-finite values are skipped)."""
        for name, value in metrics.items():
            if value is not None and math.isfinite(float(value)):
                self.curve.append(CurvePoint(phase=phase, step=int(step), metric=name, value=float(value)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with every field present (non-finite numbers become ``None``)."""
        return to_jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Diagnostics:
        """Rebuild from a run card; unknown keys (a card written by an older version) go into ``details``."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        extra = {k: v for k, v in data.items() if k not in known}
        kwargs = {k: v for k, v in data.items() if k in known}
        if not isinstance(kwargs.get("phases_s"), dict):
            kwargs["phases_s"] = {}
        acc = kwargs.get("noiseless_accuracy")
        kwargs["noiseless_accuracy"] = SplitAccuracy(**acc) if isinstance(acc, dict) else None
        lissa = kwargs.get("lissa")
        kwargs["lissa"] = LissaTrace(**lissa) if isinstance(lissa, dict) else None
        requests = kwargs.get("requests")
        kwargs["requests"] = [_request_from_dict(r) for r in requests] if isinstance(requests, list) else []
        curve = kwargs.get("curve")
        kwargs["curve"] = [CurvePoint(**c) for c in curve] if isinstance(curve, list) else []
        details = kwargs.get("details") if isinstance(kwargs.get("details"), dict) else {}
        kwargs["details"] = {**details, **({"legacy": extra} if extra else {})}
        return cls(**kwargs)


def _request_from_dict(data: dict[str, Any]) -> RequestRecord:
    data = dict(data)
    data["accuracy"] = SplitAccuracy(**data["accuracy"])
    if isinstance(data.get("accuracy_noiseless"), dict):
        data["accuracy_noiseless"] = SplitAccuracy(**data["accuracy_noiseless"])
    return RequestRecord(**data)


def diagnostics_from_card(card: dict[str, Any]) -> Diagnostics:
    """The typed diagnostics of a run card (an empty record when the card has none)."""
    raw = card.get("diagnostics")
    return Diagnostics.from_dict(raw if isinstance(raw, dict) else None)
