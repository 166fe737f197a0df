r"""The verdict: a run's result in plain words — does it behave like retraining, is it certified, what did it cost.

Why this exists: the numbers of a run (accuracies, distances, Δ, σ, timings) are all on the page, yet a reader who
has never heard of unlearning reads a green "certified" box as "it worked", even when the certified noise has
turned the model into a random guesser. The verdict reads the numbers the way an expert would and says, in one
sentence and three answers, what they mean. Its colour (``tone``) follows the verdict, not the certificate alone.

**The rules** (stated in the dashboard, ``docs/evaluation.md`` and :data:`THRESHOLDS`):

* *Like retraining* — the released model's accuracy on the **test** set and on the **forget** set is within the
  tolerance of the retrained model's. The tolerance is 2 accuracy points, widened to the 95 % sampling noise of
  the evaluation set when that is larger (:func:`tolerance`): on a forget set of 144 points an accuracy moves by
  several points between two equally good models, and calling that a difference would be noise-reading. A forget
  accuracy above the retrained model's by more than the tolerance means the model *still remembers* the forget
  set; below it, that it *over-forgets* (which an attacker can detect as well). Forgetting is judged on the forget
  set, not by parameter distance: two training runs of the same network differ far more in their weights than in
  what they compute, so the distance ratio is reported, not used to judge.
* *Destroyed* — the released model keeps less than half of the retrained model's accuracy above chance on the
  test set (:attr:`Thresholds.destroyed_fraction`): for ten classes and a retrained model at 94 %, anything
  below 52 %. A certificate on a destroyed model is still reported as a certificate — and the verdict says that
  the noise destroyed the model.
* *Cost* — unlearning time against retraining time, as measured in the run; when retraining is the cheaper of the
  two (small problems), the verdict says so.

The function is pure and UI-free: :func:`judge` takes an :class:`Evidence` (built from a run card by
:func:`evidence_from_card`, or from an experiment's rows by :func:`evidence_from_rows`) and returns a
:class:`Verdict`. The CLI summary, the Explore, Compare and Runs pages and the HTML report all render it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from unlearn_core.certificate import CERTIFIED, NOT_CERTIFIED, UNDER_ASSUMPTIONS, Certificate, certificate_from_card
from unlearn_core.diagnostics import SplitAccuracy, diagnostics_from_card

__all__ = [
    "THRESHOLDS",
    "TONES",
    "Answer",
    "Evidence",
    "FrontierMark",
    "Thresholds",
    "Verdict",
    "evidence_from_card",
    "evidence_from_rows",
    "frontier_first_epsilon",
    "judge",
    "rules_text",
    "tolerance",
    "verdict_from_card",
    "verdicts_from_rows",
]

#: The verdict's colours, best first: the dashboard maps them to st.success / st.info / st.warning / st.error.
TONES = ("success", "info", "warning", "error")


@dataclass(frozen=True)
class Thresholds:
    """The verdict's thresholds (one instance, :data:`THRESHOLDS`, used everywhere and quoted in the UI).

    Attributes:
        accuracy_points: an accuracy gap to the retrained model counts only above this (0.02 = 2 points)...
        z: ...and above ``z`` standard errors of the difference of two accuracies on the evaluation set (1.96: the
            95 % sampling noise), whichever is larger (:func:`tolerance`).
        destroyed_fraction: the released model is *destroyed* when it keeps less than this fraction of the
            retrained model's test accuracy above chance (1 / number of classes).
    """

    accuracy_points: float = 0.02
    z: float = 1.96
    destroyed_fraction: float = 0.5


THRESHOLDS = Thresholds()


def tolerance(*, n: int | None, p: float, thresholds: Thresholds = THRESHOLDS) -> float:
    r"""The accuracy gap (a fraction) below which two models count as equally accurate on ``n`` points.

    .. math:: \tau = \max\Big(0.02,\; z\sqrt{2p(1-p)/n}\Big)

    The second term is the 95 % half-width of the difference of two independent binomial accuracies with rate p
    on n points. Two models evaluated on the *same* points are positively correlated, so this overstates the
    noise: it errs towards "no difference". ``n`` unknown (``None``) gives the fixed 2 points.
    """
    fixed = thresholds.accuracy_points
    if not n or n <= 0 or not math.isfinite(p):
        return fixed
    p = min(max(float(p), 0.0), 1.0)
    return max(fixed, thresholds.z * math.sqrt(2.0 * p * (1.0 - p) / float(n)))


def rules_text(thresholds: Thresholds = THRESHOLDS) -> str:
    """The rules in one paragraph, for the dashboard's caption and the reports."""
    return (
        f"Like retraining: test and forget accuracy within {100 * thresholds.accuracy_points:g} points of the "
        "retrained model's (or within the 95 % sampling noise of the evaluation set, if larger). Still remembers / "
        "over-forgets: forget accuracy above / below the retrained model's by more than that. Destroyed: keeps less "
        f"than {100 * thresholds.destroyed_fraction:g} % of the retrained model's test accuracy above chance. "
        "Parameter distance is reported, not judged: two training runs differ more in weights than in what they "
        "compute."
    )


# ----------------------------------------------------------------------------------------------------------------
# Evidence: what the verdict reads, from a run card or from an experiment's rows
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """The numbers one verdict reads. Accuracies are fractions; ``None`` means "not measured".

    ``released`` is the model the method hands out (after its noise); ``noiseless`` the method's estimate before
    the noise, for methods that release estimate + noise (certified Newton). ``certificate`` is the typed record
    when at hand (a run card); experiment rows give only ``status``, ``epsilon`` and ``sigma_used``.
    """

    method: str
    family: str
    released: SplitAccuracy
    retrained: SplitAccuracy | None = None
    original: SplitAccuracy | None = None
    noiseless: SplitAccuracy | None = None
    num_classes: int | None = None
    n_forget: int | None = None
    n_test: int | None = None
    distance_to_retrained: float | None = None
    original_to_retrained: float | None = None
    noiseless_to_retrained: float | None = None
    status: str | None = None
    epsilon: float | None = None
    delta: float | None = None
    sigma_used: float | None = None
    certificate: Certificate | None = None
    unlearn_s: float | None = None
    retrain_s: float | None = None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _split(block: Mapping[str, Any] | None, *, prefix: str = "acc_") -> SplitAccuracy | None:
    if not isinstance(block, Mapping):
        return None
    values = [_num(block.get(f"{prefix}{s}")) for s in ("forget", "retain", "test")]
    if values[0] is None or values[2] is None:
        return None
    return SplitAccuracy(forget=values[0], retain=values[1] if values[1] is not None else math.nan, test=values[2])


def evidence_from_card(card: Mapping[str, Any]) -> Evidence | None:
    """The evidence in a run card (``None`` for a card without an unlearned model, e.g. an experiment's)."""
    models = card.get("models") or {}
    released = _split(models.get("unlearned"))
    if released is None:
        return None
    method = card.get("method") or {}
    cert = certificate_from_card(dict(card)) if card.get("certificate") else None
    diag = diagnostics_from_card(dict(card))
    data = card.get("data") or {}
    dist = card.get("distance") or {}
    timing = card.get("timing_s") or {}
    noiseless = diag.noiseless_accuracy
    return Evidence(
        method=str(method.get("name") or (card.get("config") or {}).get("method") or "?"),
        family=str(method.get("family") or "?"),
        released=released,
        retrained=_split(models.get("retrained")),
        original=_split(models.get("original")),
        noiseless=noiseless,
        num_classes=data.get("num_classes"),
        n_forget=data.get("n_forget"),
        n_test=data.get("n_test"),
        distance_to_retrained=_num(dist.get("unlearned_to_retrained")),
        original_to_retrained=_num(dist.get("original_to_retrained")),
        noiseless_to_retrained=_num(diag.approx_error),
        status=cert.status if cert is not None else None,
        epsilon=cert.epsilon if cert is not None else None,
        delta=cert.delta_guaranteed if cert is not None else None,
        sigma_used=cert.sigma_used if cert is not None else None,
        certificate=cert,
        unlearn_s=_num(timing.get("unlearn")),
        retrain_s=_num(timing.get("retrain")),
    )


def evidence_from_rows(
    row: Mapping[str, Any],
    *,
    retrained: Mapping[str, Any] | None,
    original: Mapping[str, Any] | None = None,
    num_classes: int | None = None,
    n_test: int | None = None,
) -> Evidence | None:
    """The evidence of one method's experiment row (Compare, frontier), read against the reference rows.

    Rows are :func:`unlearn_core.experiments.compare`'s (``acc_*``, ``dist_to_retrained``, ``status``, ``epsilon``,
    ``sigma_used``, ``time_s``, ``n_forget``, optionally ``acc_*_noiseless``), possibly averaged over seeds.
    """
    released = _split(row)
    if released is None:
        return None
    ref = _split(retrained) if retrained is not None else None
    orig = _split(original) if original is not None else None
    noiseless = None
    forget_nl, test_nl = _num(row.get("acc_forget_noiseless")), _num(row.get("acc_test_noiseless"))
    if forget_nl is not None and test_nl is not None:
        retain_nl = _num(row.get("acc_retain_noiseless"))
        noiseless = SplitAccuracy(forget=forget_nl, retain=retain_nl if retain_nl is not None else math.nan,
                                  test=test_nl)
    status = row.get("status")
    n_forget = _num(row.get("n_forget"))
    return Evidence(
        method=str(row.get("method", "?")),
        family=str(row.get("family", "?")),
        released=released,
        retrained=ref,
        original=orig,
        noiseless=noiseless,
        num_classes=num_classes,
        n_forget=int(n_forget) if n_forget is not None else None,
        n_test=n_test if n_test is not None else (int(row["n_test"]) if _num(row.get("n_test")) else None),
        distance_to_retrained=_num(row.get("dist_to_retrained")),
        original_to_retrained=_num((original or {}).get("dist_to_retrained")),
        noiseless_to_retrained=_num(row.get("approx_error")),
        status=status if isinstance(status, str) else None,
        epsilon=_num(row.get("epsilon")),
        delta=_num(row.get("delta_guaranteed")) or _num(row.get("delta")),
        sigma_used=_num(row.get("sigma_used")),
        unlearn_s=_num(row.get("time_s")),
        retrain_s=_num((retrained or {}).get("time_s")),
    )


# ----------------------------------------------------------------------------------------------------------------
# The verdict
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One of the three questions, answered twice: ``short`` (a few words, read in seconds) and ``detail`` (the
    numbers behind it, in sentences). ``tone`` colours that line alone."""

    key: str
    question: str
    short: str
    detail: str
    tone: str


@dataclass
class Verdict:
    """A run's result in plain words (see the module docstring for the rules).

    Attributes:
        tone: ``success`` (works: like retraining, and certified or exact), ``info`` (like retraining, not
            certified), ``warning`` (usable but not like retraining, or no retrained model to compare with),
            ``error`` (destroyed).
        label: a few words for tables ("works", "noise destroyed the model", "still remembers the forget set"...).
        headline: one sentence.
        answers: the three questions — ``like_retraining``, ``certified``, ``cost`` — in that order.
        like_retraining: whether the released model behaves like retraining (``None``: no retrained model).
        destroyed: whether the released model keeps less than half of the retrained model's margin over chance.
        test_gap, forget_gap: released − retrained accuracy (fractions); ``*_tolerance``: what they were judged by.
        distance_ratio: ‖w_released − w_retrained‖ / ‖w_original − w_retrained‖ (reported, not judged).
        noiseless_like_retraining, noiseless_distance_ratio: the same for the estimate before the noise.
        original_like_retraining: whether the original model itself is within the tolerances (then accuracy cannot
            show forgetting on this forget set).
        speedup: retraining time / unlearning time (> 1: unlearning is faster).
    """

    tone: str
    label: str
    headline: str
    answers: list[Answer]
    like_retraining: bool | None = None
    destroyed: bool = False
    test_gap: float | None = None
    forget_gap: float | None = None
    test_tolerance: float | None = None
    forget_tolerance: float | None = None
    distance_ratio: float | None = None
    noiseless_like_retraining: bool | None = None
    noiseless_distance_ratio: float | None = None
    original_like_retraining: bool | None = None
    speedup: float | None = None
    rules: str = field(default_factory=rules_text)

    def answer(self, key: str) -> Answer:
        return next(a for a in self.answers if a.key == key)

    def to_dict(self) -> dict[str, Any]:
        from unlearn_core.jsonio import to_jsonable

        return to_jsonable(asdict(self))

    def lines(self, *, detail: bool = False) -> list[str]:
        """The verdict as plain text lines: the headline, then one line per question (the CLI, the HTML report)."""
        return [self.headline, *(f"{a.question} {a.detail if detail else a.short}" for a in self.answers)]


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _pts(gap: float) -> str:
    return f"{100 * abs(gap):.1f} points"


@dataclass(frozen=True)
class _Behaviour:
    """How one model (the release, the noise-free estimate or the original) compares with the retrained one."""

    like: bool
    destroyed: bool
    kind: str  # "like", "destroyed", "remembers", "over_forgets", "loses_accuracy"
    test_gap: float
    forget_gap: float
    test_tol: float
    forget_tol: float
    short: str
    sentence: str


def _behaviour(acc: SplitAccuracy, ev: Evidence, th: Thresholds, *, who: str) -> _Behaviour | None:
    ref = ev.retrained
    if ref is None:
        return None
    test_gap, forget_gap = acc.test - ref.test, acc.forget - ref.forget
    test_tol = tolerance(n=ev.n_test, p=ref.test, thresholds=th)
    forget_tol = tolerance(n=ev.n_forget, p=ref.forget, thresholds=th)
    chance = 1.0 / ev.num_classes if ev.num_classes else 0.0
    margin = ref.test - chance
    destroyed = margin > 0 and (acc.test - chance) < th.destroyed_fraction * margin
    original_forget = f", original {_pct(ev.original.forget)}" if ev.original is not None else ""
    tests = f"test accuracy {_pct(acc.test)} vs {_pct(ref.test)} retrained"
    forgets = f"forget-set accuracy {_pct(acc.forget)} vs {_pct(ref.forget)} retrained{original_forget}"
    both = f"test {_pct(acc.test)} vs {_pct(ref.test)}, forget set {_pct(acc.forget)} vs {_pct(ref.forget)}"

    def make(like: bool, kind: str, short: str, sentence: str) -> _Behaviour:
        return _Behaviour(like, kind == "destroyed", kind, test_gap, forget_gap, test_tol, forget_tol, short,
                          sentence)

    if destroyed:
        chance_text = f" (chance: {_pct(chance)})" if chance else ""
        return make(False, "destroyed", f"No — destroyed: test accuracy {_pct(acc.test)} vs {_pct(ref.test)} "
                    "retrained.", f"{who} is destroyed: {tests}{chance_text}.")
    if forget_gap > forget_tol:
        return make(False, "remembers", f"No — still remembers the forget set: {_pct(acc.forget)} vs "
                    f"{_pct(ref.forget)} retrained.", f"{who} still remembers the forget set: {forgets} — "
                    f"{_pts(forget_gap)} above, more than the {_pts(forget_tol)} tolerance.")
    if forget_gap < -forget_tol:
        return make(False, "over_forgets", f"No — over-forgets: forget set {_pct(acc.forget)} vs {_pct(ref.forget)} "
                    "retrained.", f"{who} over-forgets: {forgets} — {_pts(forget_gap)} below, more than the "
                    f"{_pts(forget_tol)} tolerance (an attacker can detect that too).")
    if test_gap < -test_tol:
        return make(False, "loses_accuracy", f"No — loses accuracy: test {_pct(acc.test)} vs {_pct(ref.test)} "
                    "retrained.", f"{who} loses accuracy: {tests} — {_pts(test_gap)} below, more than the "
                    f"{_pts(test_tol)} tolerance.")
    return make(True, "like", f"Yes — {both} retrained.",
                f"{who} behaves like retraining: {tests}, {forgets} (tolerances: {_pts(test_tol)} on the test set, "
                f"{_pts(forget_tol)} on the forget set).")


def _ratio_text(ratio: float | None, *, whose: str) -> str:
    """The parameter-distance ratio as a reported (not judged) number."""
    if ratio is None:
        return ""
    closes = f", closing {100 * (1 - ratio):.3g} % of it" if ratio < 1 else ""
    return (f" ({whose} distance to the retrained model in parameter space: {ratio:.3g}× the original's{closes}; "
            "reported, not judged.)")


def _cost(ev: Evidence) -> tuple[Answer, float | None]:
    q = "Cost?"
    if ev.family == "oracle":
        took = f"{ev.unlearn_s:.2f} s" if ev.unlearn_s is not None else "the full training cost"
        return Answer("cost", q, f"Retraining: {took}.", f"Retraining took {took}; unlearning methods exist to be "
                      "cheaper than this.", "info"), None
    if ev.unlearn_s is None:
        return Answer("cost", q, "Not measured.", "Unlearning time was not measured.", "info"), None
    if ev.retrain_s is None or ev.retrain_s <= 0:
        return Answer("cost", q, f"Unlearning {ev.unlearn_s:.2f} s.", f"Unlearning took {ev.unlearn_s:.2f} s (no "
                      "retraining time to compare with).", "info"), None
    speedup = ev.retrain_s / ev.unlearn_s if ev.unlearn_s > 0 else math.inf
    times = f"Unlearning {ev.unlearn_s:.2f} s vs retraining {ev.retrain_s:.2f} s"
    if speedup >= 1:
        return Answer("cost", q, f"{times}: {speedup:.1f}× faster.", f"Unlearning took {ev.unlearn_s:.2f} s "
                      f"against {ev.retrain_s:.2f} s to retrain from scratch: {speedup:.1f}× faster than retraining.",
                      "success"), speedup
    return Answer("cost", q, f"{times}: retraining is cheaper here.", f"Unlearning took {ev.unlearn_s:.2f} s against "
                  f"{ev.retrain_s:.2f} s to retrain: on a problem this small retraining is {1 / speedup:.1f}× cheaper "
                  "than unlearning. The saving appears when retraining is expensive (the MNIST preset, larger "
                  "models).", "warning"), speedup


def _certification(ev: Evidence, released: _Behaviour | None) -> Answer:
    q = "Certified?"
    if ev.family == "oracle":
        return Answer("certified", q, "Not needed: retrained without the forget set.", "No certificate is needed: the "
                      "model was retrained without the forget set, so it never saw it.", "success")
    if ev.status is None:
        return Answer("certified", q, f"No — {ev.family} method, no (ε, δ) guarantee.",
                      f"No: {ev.method} is {ev.family} and carries no (ε, δ) certificate.", "warning")
    budget = ", ".join(x for x in (f"ε = {ev.epsilon:g}" if ev.epsilon is not None else "",
                                   f"δ = {ev.delta:.3g}" if ev.delta is not None else "") if x)
    if ev.status == NOT_CERTIFIED:
        short, detail = "No.", "No: not certified."
        if ev.certificate is not None and ev.certificate.failing():
            first = ev.certificate.failing()[0]
            short = f"No — {first.statement} fails."
            detail = (f"No: {first.statement} fails ({first.value}; needs {first.requirement})"
                      + (f". Fix: {first.fix}." if first.fix else "."))
        return Answer("certified", q, short, detail, "warning")
    soft = ev.certificate.soft_constants() if ev.certificate is not None else []
    if ev.status == CERTIFIED:
        short = f"Yes — certified at {budget}."
        detail = f"Yes: {CERTIFIED} at {budget}; every condition of the theorem holds and every constant is a bound."
    else:
        names = ", ".join(c.name for c in soft)
        short = f"Yes, under assumptions ({names}) — {budget}." if names else f"Yes, under assumptions — {budget}."
        detail = (f"Yes: {UNDER_ASSUMPTIONS} at {budget}; every condition holds, and the guarantee rests on "
                  + (", ".join(f"{c.name} ({c.tag})" for c in soft) if soft else "stated assumptions") + ".")
    if released is not None and released.destroyed and ev.retrained is not None:
        sigma = f" (σ = {ev.sigma_used:.3g})" if ev.sigma_used else ""
        short += f" But the noise{sigma} destroyed the model."
        detail += (f" But the noise{sigma} destroyed the model: test accuracy {_pct(ev.released.test)} vs "
                   f"{_pct(ev.retrained.test)} retrained.")
        return Answer("certified", q, short, detail, "error")
    return Answer("certified", q, short, detail, "success")


def judge(evidence: Evidence, *, thresholds: Thresholds = THRESHOLDS) -> Verdict:
    """The verdict on one run (see the module docstring for the rules)."""
    ev, th = evidence, thresholds
    cost, speedup = _cost(ev)
    ratio = (ev.distance_to_retrained / ev.original_to_retrained
             if ev.distance_to_retrained is not None and ev.original_to_retrained else None)
    noiseless_ratio = (ev.noiseless_to_retrained / ev.original_to_retrained
                       if ev.noiseless_to_retrained is not None and ev.original_to_retrained else None)
    q = "Like retraining?"

    if ev.family == "oracle":
        like = Answer("like_retraining", q, "It is retraining.", "It is retraining: the reference every other method "
                      "is measured against.", "success")
        return Verdict(tone="success", label="exact (retrained)", headline="Exact unlearning: the model was retrained "
                       "from scratch without the forget set — the gold standard, at the full cost of retraining.",
                       answers=[like, _certification(ev, None), cost], like_retraining=True, speedup=speedup,
                       distance_ratio=ratio, rules=rules_text(th))

    released = _behaviour(ev.released, ev, th, who="The released model")
    certified = _certification(ev, released)
    if released is None:
        like = Answer("like_retraining", q, "Unknown: no retrained model.", "Unknown: no retrained model was trained "
                      "to compare with.", "warning")
        return Verdict(tone="warning", label="no reference", headline="No retrained model to compare with, so "
                       "whether the method forgot cannot be judged.", answers=[like, certified, cost],
                       distance_ratio=ratio, speedup=speedup, rules=rules_text(th))
    ref = ev.retrained
    assert ref is not None
    # The noise-free estimate, when the method reports it and the noise changed the model.
    noiseless = None
    if ev.noiseless is not None and (ev.sigma_used or 0) > 0 and ev.noiseless != ev.released:
        noiseless = _behaviour(ev.noiseless, ev, th, who="Before the noise, the method's own estimate")
    original = _behaviour(ev.original, ev, th, who="The original model") if ev.original is not None else None

    short = released.short
    detail = released.sentence + _ratio_text(ratio, whose="Its")
    if noiseless is not None:
        detail += " " + noiseless.sentence + _ratio_text(noiseless_ratio, whose="The estimate's")
        if released.destroyed and noiseless.like:
            short = (f"Before the noise, yes (test {_pct(ev.noiseless.test)}); after it, no: test "  # type: ignore
                     f"{_pct(ev.released.test)} vs {_pct(ref.test)} retrained.")
    if original is not None and original.like and (released.like or (noiseless is not None and noiseless.like)):
        assert ev.original is not None
        detail += (f" Note: the original model, before any unlearning, is within these tolerances too (forget-set "
                   f"accuracy {_pct(ev.original.forget)} vs {_pct(ref.forget)}): on this forget set, accuracy cannot "
                   "tell forgetting from doing nothing — the certificate and the membership-inference scores carry "
                   "that evidence.")
    like = Answer("like_retraining", q, short, detail,
                  "success" if released.like else "error" if released.destroyed else "warning")

    is_certified = ev.status in (CERTIFIED, UNDER_ASSUMPTIONS)
    status_words = {CERTIFIED: "certified", UNDER_ASSUMPTIONS: "certified under assumptions",
                    NOT_CERTIFIED: "not certified"}.get(ev.status or "", "not certified (no certificate)")
    at_eps = f" at ε = {ev.epsilon:g}" if is_certified and ev.epsilon is not None else ""
    if released.destroyed:
        tone = "error"
        by_noise = (ev.sigma_used or 0) > 0
        label = "noise destroyed the model" if by_noise else "model destroyed"
        lead = (f"{status_words.capitalize()}{at_eps}, but the noise destroyed the model" if by_noise
                else f"{status_words.capitalize()}, and the model is destroyed")
        headline = f"{lead}: test accuracy {_pct(ev.released.test)} vs {_pct(ref.test)} retrained."
        if noiseless is not None and noiseless.like:
            assert ev.noiseless is not None
            if noiseless_ratio is not None and noiseless_ratio < 0.5:
                step = (f"The step itself lands next to the retrained model ({noiseless_ratio:.2g}× the original's "
                        "distance from it)")
            else:
                step = (f"Before the noise the model is as accurate as retraining (test accuracy "
                        f"{_pct(ev.noiseless.test)} vs {_pct(ref.test)})")
            headline = (f"{step}, but the noise that certifies it destroyed the model: test accuracy "
                        f"{_pct(ev.released.test)} vs {_pct(ref.test)} retrained ({status_words}{at_eps}).")
    elif released.like:
        both = (f"test accuracy {_pct(ev.released.test)} vs {_pct(ref.test)}, forget set "
                f"{_pct(ev.released.forget)} vs {_pct(ref.forget)}")
        if is_certified:
            tone, label = "success", "works" if ev.status == CERTIFIED else "works (under assumptions)"
            headline = f"Works: behaves like retraining ({both}) and is {status_words}{at_eps}."
        else:
            tone, label = "info", "like retraining, not certified"
            headline = f"Behaves like retraining ({both}), but is {status_words}."
    else:
        tone = "warning"
        label = {"remembers": "still remembers the forget set", "over_forgets": "over-forgets",
                 "loses_accuracy": "loses accuracy"}[released.kind]
        detail_text = (f"test accuracy {_pct(ev.released.test)} vs {_pct(ref.test)} retrained"
                       if released.kind == "loses_accuracy" else
                       f"forget-set accuracy {_pct(ev.released.forget)} vs {_pct(ref.forget)} retrained")
        headline = f"{label.capitalize()}: {detail_text}; {status_words}{at_eps}."
        if released.kind == "remembers" and ratio is not None and ratio > 0.9:
            label = "does not forget"
            headline = (f"Does not forget: {detail_text}, and the weights barely moved towards the retrained model "
                        f"({100 * (1 - ratio):.2g} % of the distance closed); {status_words}{at_eps}.")
    return Verdict(
        tone=tone, label=label, headline=headline, answers=[like, certified, cost], like_retraining=released.like,
        destroyed=released.destroyed, test_gap=released.test_gap, forget_gap=released.forget_gap,
        test_tolerance=released.test_tol, forget_tolerance=released.forget_tol, distance_ratio=ratio,
        noiseless_like_retraining=noiseless.like if noiseless is not None else None,
        noiseless_distance_ratio=noiseless_ratio,
        original_like_retraining=original.like if original is not None else None, speedup=speedup,
        rules=rules_text(th),
    )


def verdict_from_card(card: Mapping[str, Any], *, thresholds: Thresholds = THRESHOLDS) -> Verdict | None:
    """The verdict on a run card (``None`` when the card has no unlearned model, e.g. an experiment's card)."""
    evidence = evidence_from_card(card)
    return None if evidence is None else judge(evidence, thresholds=thresholds)


def verdicts_from_rows(
    df: Any,
    *,
    by: str = "method",
    num_classes: int | None = None,
    thresholds: Thresholds = THRESHOLDS,
) -> dict[Any, Verdict]:
    """A verdict per group of an experiment's tidy rows (Compare: per method), read against the ``retrained`` and
    ``original`` reference rows, on the mean over seeds (the weakest certificate status over seeds).

    ``df`` is a :class:`pandas.DataFrame` of :func:`unlearn_core.experiments.compare` rows (reference rows have
    ``method`` ``retrained`` / ``original``). Groups without accuracies are left out.
    """
    import pandas as pd

    from unlearn_core.certificate import STATUSES

    if df is None or len(df) == 0 or by not in df.columns:
        return {}
    numeric = df.apply(lambda c: pd.to_numeric(c, errors="coerce") if c.name not in (by, "status", "family")
                       else c)
    means = numeric.groupby(by, sort=False).mean(numeric_only=True)
    rows: dict[Any, dict[str, Any]] = {key: {by: key, **means.loc[key].to_dict()} for key in means.index}
    for key, group in df.groupby(by, sort=False):
        statuses = [s for s in group.get("status", pd.Series(dtype=object)) if isinstance(s, str)]
        rows[key]["status"] = max(statuses, key=STATUSES.index) if statuses else None
        families = [f for f in group.get("family", pd.Series(dtype=object)) if isinstance(f, str)]
        rows[key]["family"] = families[0] if families else "?"
    retrained, original = rows.get("retrained"), rows.get("original")
    out: dict[Any, Verdict] = {}
    for key, row in rows.items():
        if key in ("retrained", "original") and by == "method":
            continue
        evidence = evidence_from_rows(row, retrained=retrained, original=original, num_classes=num_classes)
        if evidence is not None:
            out[key] = judge(evidence, thresholds=thresholds)
    return out


@dataclass(frozen=True)
class FrontierMark:
    """Where one method's frontier meets retraining: ``first`` — the smallest ε of the grid whose mean test accuracy
    is at most the tolerance below the retrained model's (``None``: never); ``stays`` — whether every larger ε of the
    grid is within it too; ``leaves_at`` — otherwise, the first larger ε that falls out again (a method whose noise
    is also what re-initialises the model can lose accuracy when ε grows and σ shrinks)."""

    first: float | None
    stays: bool
    leaves_at: float | None = None


def frontier_first_epsilon(df: Any, *, points: float | None = None) -> dict[str, FrontierMark]:
    """On a privacy–utility frontier (:func:`unlearn_core.experiments.frontier` rows), per method: the first ε of
    the grid whose mean test accuracy (over seeds) is at most ``points`` (default: the verdict's 2 points) below
    the retrained model's, and whether the method stays there for every larger ε (:class:`FrontierMark`).

    One-sided, like the verdict's "loses accuracy": a test accuracy above the retrained model's is no cost."""
    import pandas as pd

    points = THRESHOLDS.accuracy_points if points is None else float(points)
    ref = pd.to_numeric(df.loc[df["method"] == "retrained", "acc_test"], errors="coerce").mean()
    out: dict[str, FrontierMark] = {}
    rows = df[~df["method"].isin(["original", "retrained"])]
    for method, part in rows.groupby("method", sort=False):
        part = part.assign(acc_test=pd.to_numeric(part["acc_test"], errors="coerce"),
                           epsilon=pd.to_numeric(part["epsilon"], errors="coerce"))
        mean = part.groupby("epsilon")["acc_test"].mean().sort_index()
        within = [(float(eps), bool(ref - value <= points + 1e-12)) for eps, value in mean.items()]
        first = next((eps for eps, ok in within if ok), None)
        leaves = None if first is None else next((eps for eps, ok in within if eps > first and not ok), None)
        out[str(method)] = FrontierMark(first=first, stays=first is not None and leaves is None, leaves_at=leaves)
    return out
