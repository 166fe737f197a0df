r"""The verdict: a run's result in plain words — does it forget like retraining, is it certified, what did it cost.

Why this exists: the numbers of a run (accuracies, distances, Δ, σ, timings) are all on the page, yet a reader who
has never heard of unlearning reads a green "certified" box as "it worked", even when the certified noise has
turned the model into a random guesser — and reads "as accurate as retraining" as "it forgot", even when the
original model, before any unlearning, is just as accurate. The verdict reads the numbers the way an expert would,
**against a control** (the original model under the same tests), and says in one sentence and three answers what
they mean.

**The rules** (stated in the dashboard, ``docs/evaluation.md`` and :data:`THRESHOLDS`):

* *Like retraining* — the released model's accuracy on the **test** set and on the **forget** set is within the
  tolerance of the retrained model's. The tolerance is 2 accuracy points, widened to the 95 % sampling noise of
  the evaluation set when that is larger (:func:`tolerance`). A forget accuracy above the retrained model's by more
  than the tolerance means the model *still remembers* the forget set; below it, that it *over-forgets* (which an
  attacker can detect as well).
* *The control* — the same tests are applied to the original model. A test the original model passes cannot tell
  forgetting from doing nothing (on a random forget set the original is often within 2 points of retraining), so
  forgetting is *measured* only by a test the original fails: the accuracy test; else the membership-inference
  score (loss-attack AUC on the forget set against the retrained model's, within :func:`mia_tolerance`); else the
  noise-free step's distance to the retrained model, ‖w̃ − w_r‖ / ‖w_o − w_r‖ ≤ 1/2 (it closed at least half of
  the original's distance). When no test separates the original from the retrained model, *nothing measurable was
  left to forget*, and the verdict says so — a method that returns its input unchanged is never "like retraining"
  without that caveat.
* *Destroyed* — the released model keeps less than half of the retrained model's accuracy above chance on the
  test set (:attr:`Thresholds.destroyed_fraction`). A certificate on a destroyed model is still reported — and the
  verdict says that the noise destroyed the model.
* *Certified* — the certificate's status decides the words: "certified" only for a proof, "certified under
  assumptions" for a guarantee that rests on estimates or assumed constants, "not certified" otherwise; the first
  line never says "certifies" for a run that is not certified.
* *Cost* — unlearning time against retraining time; when retraining is the cheaper of the two, the verdict says so.

**One colour rule** (:func:`verdict_tone`, quoted in the dashboard's "Why" expander: :data:`COLOUR_RULE`): green —
forgets like retraining (measured against the control) *and* certified by a proof (or exact retraining); blue —
nothing fails but something is short of that (certified under assumptions, no certificate claimed, or nothing
measurable to forget); yellow — one of the two fails (it does not forget, or its certificate fails); red — both
fail, or the model is destroyed.

The function is pure and UI-free: :func:`judge` takes an :class:`Evidence` (built from a run card by
:func:`evidence_from_card`, or from an experiment's rows by :func:`evidence_from_rows`) and returns a
:class:`Verdict`. The CLI summary, the Explore, Compare and Runs pages and the HTML report all render it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from unlearn_core import formatting as fmt
from unlearn_core.certificate import CERTIFIED, NOT_CERTIFIED, UNDER_ASSUMPTIONS, Certificate, certificate_from_card
from unlearn_core.diagnostics import SplitAccuracy, diagnostics_from_card

__all__ = [
    "COLOUR_RULE",
    "FORGETTING",
    "GUARANTEES",
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
    "infinite_cause",
    "judge",
    "mia_tolerance",
    "not_certified_cause",
    "rules_text",
    "tolerance",
    "verdict_from_card",
    "verdict_tone",
    "verdicts_from_rows",
]

#: The verdict's colours, best first: the dashboard maps them to st.success / st.info / st.warning / st.error.
TONES = ("success", "info", "warning", "error")

#: What the forgetting tests found: ``forgets`` (like retraining by a test the original model fails),
#: ``unmeasurable`` (like retraining, but so is the original: nothing measurable to forget), ``fails`` (still
#: remembers, over-forgets or loses accuracy), ``destroyed``, ``unknown`` (no retrained model to compare with).
FORGETTING = ("forgets", "unmeasurable", "fails", "destroyed", "unknown")

#: What the guarantee is: ``exact`` (retrained), ``proof`` (certified), ``assumptions`` (certified under
#: assumptions), ``none`` (the method claims no certificate), ``fails`` (its certificate fails: not certified).
GUARANTEES = ("exact", "proof", "assumptions", "none", "fails")

#: The colour rule in words (the dashboard's "Why" expander and the docs quote it).
COLOUR_RULE = (
    "Colour: green = forgets like retraining (measured against the original model) and certified by a proof; "
    "blue = nothing fails but something is short of that (certified only under assumptions, no certificate "
    "claimed, or nothing measurable to forget); yellow = one of the two fails (it does not forget, or its "
    "certificate fails); red = both fail, or the model is destroyed."
)


def verdict_tone(forgetting: str, guarantee: str) -> str:
    """The verdict's colour from what the forgetting tests found and what the guarantee is — the one rule
    (:data:`COLOUR_RULE`) for every state, every page and every preset."""
    if forgetting not in FORGETTING or guarantee not in GUARANTEES:
        raise ValueError(f"verdict_tone: unknown state ({forgetting!r}, {guarantee!r})")
    if forgetting == "destroyed":
        return "error"
    forget_fails, cert_fails = forgetting == "fails", guarantee == "fails"
    if forget_fails and cert_fails:
        return "error"
    if forget_fails or cert_fails:
        return "warning"
    if forgetting == "forgets" and guarantee in ("exact", "proof"):
        return "success"
    return "info"


@dataclass(frozen=True)
class Thresholds:
    """The verdict's thresholds (one instance, :data:`THRESHOLDS`, used everywhere and quoted in the UI).

    Attributes:
        accuracy_points: an accuracy gap to the retrained model counts only above this (0.02 = 2 points)...
        z: ...and above ``z`` standard errors of the difference of two accuracies on the evaluation set (1.96: the
            95 % sampling noise), whichever is larger (:func:`tolerance`).
        destroyed_fraction: the released model is *destroyed* when it keeps less than this fraction of the
            retrained model's test accuracy above chance (1 / number of classes).
        mia_points: a membership-inference AUC gap counts only above this (or above its 95 % sampling noise).
        distance_ratio: the noise-free step counts as evidence of forgetting when it closes at least
            ``1 − distance_ratio`` of the original's distance to the retrained model.
    """

    accuracy_points: float = 0.02
    z: float = 1.96
    destroyed_fraction: float = 0.5
    mia_points: float = 0.02
    distance_ratio: float = 0.5


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


def mia_tolerance(*, n: int | None, thresholds: Thresholds = THRESHOLDS) -> float:
    r"""The gap between two membership-inference AUCs below which they count as equal, with ``n`` points per
    class (forget set vs test set, balanced).

    .. math:: \tau = \max\Big(0.02,\; z\sqrt{2}\,\sqrt{\tfrac{2n + 1}{12 n^2}}\Big)

    :math:`\sqrt{(n_1 + n_2 + 1)/(12 n_1 n_2)}` is the standard error of an AUC (Mann–Whitney U) at chance level
    (Hanley & McNeil 1982, the null variance); the difference of two independent AUCs has √2 times it. On 144
    forget points that is ≈ 0.094: a loss attack must move by ten AUC points before it counts.
    """
    fixed = thresholds.mia_points
    if not n or n <= 0:
        return fixed
    return max(fixed, thresholds.z * math.sqrt(2.0) * math.sqrt((2.0 * n + 1.0) / (12.0 * n * n)))


def rules_text(thresholds: Thresholds = THRESHOLDS) -> str:
    """The rules in one paragraph, for the dashboard's caption and the reports."""
    return (
        f"Like retraining: test and forget accuracy within {100 * thresholds.accuracy_points:g} points of the "
        "retrained model's (or within the 95 % sampling noise of the evaluation set, if larger). Still remembers / "
        "over-forgets: forget accuracy above / below the retrained model's by more than that. The control: the "
        "original model takes the same tests; forgetting is measured only by a test it fails (accuracy, else the "
        "membership-inference AUC, else the noise-free step closing at least "
        f"{100 * (1 - thresholds.distance_ratio):g} % of the original's distance to the retrained model); when it "
        "passes them all, nothing measurable was left to forget. Destroyed: keeps less than "
        f"{100 * thresholds.destroyed_fraction:g} % of the retrained model's test accuracy above chance. "
        + COLOUR_RULE
    )


# ----------------------------------------------------------------------------------------------------------------
# Evidence: what the verdict reads, from a run card or from an experiment's rows
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """The numbers one verdict reads. Accuracies are fractions; ``None`` means "not measured".

    ``released`` is the model the method hands out (after its noise); ``noiseless`` the method's estimate before
    the noise, for methods that release estimate + noise (certified Newton); ``original`` the control. ``mia_*``
    are the loss attack's AUCs (forget set vs test set) of the three models, on ``mia_n`` points per class.
    ``certificate`` is the typed record when at hand (a run card); experiment rows give only ``status``,
    ``epsilon`` and ``sigma_used``. ``simulation``: the release noise was seeded (reproducible mode), so the run
    is a simulation, not a release (read from the certificate when it says so).
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
    released_to_original: float | None = None
    mia_released: float | None = None
    mia_retrained: float | None = None
    mia_original: float | None = None
    mia_n: int | None = None
    noise_norm: float | None = None
    status: str | None = None
    epsilon: float | None = None
    delta: float | None = None
    sigma_used: float | None = None
    certificate: Certificate | None = None
    unlearn_s: float | None = None
    retrain_s: float | None = None
    simulation: bool = False


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


#: The membership-inference score the verdict reads (the loss attack: defined for every model, the original too).
MIA_SCORE = "loss_auc"
#: Points per class the attacks use at most (:func:`unlearn_core.metrics.model_mia`'s ``max_per_class``).
MIA_MAX_PER_CLASS = 1000


def _mia_n(n_forget: Any, n_test: Any) -> int | None:
    sizes = [int(v) for v in (n_forget, n_test) if _num(v) is not None and v > 0]
    return min([*sizes, MIA_MAX_PER_CLASS]) if sizes else None


def _simulation(cert: Certificate | None) -> bool:
    """Whether the certificate says its release noise was seeded (a simulation, not a release). Read defensively:
    the field is the certificate's (``simulation`` on the record or in its details)."""
    if cert is None:
        return False
    flag = getattr(cert, "simulation", None)
    if flag is None:
        flag = (cert.details or {}).get("simulation")
    return bool(flag)


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
    mia = card.get("mia") if isinstance(card.get("mia"), Mapping) else {}

    def score(model: str) -> float | None:
        block = mia.get(model)
        return _num(block.get(MIA_SCORE)) if isinstance(block, Mapping) else None

    return Evidence(
        method=str(method.get("name") or (card.get("config") or {}).get("method") or "?"),
        family=str(method.get("family") or "?"),
        released=released,
        retrained=_split(models.get("retrained")),
        original=_split(models.get("original")),
        noiseless=diag.noiseless_accuracy,
        num_classes=data.get("num_classes"),
        n_forget=data.get("n_forget"),
        n_test=data.get("n_test"),
        distance_to_retrained=_num(dist.get("unlearned_to_retrained")),
        original_to_retrained=_num(dist.get("original_to_retrained")),
        noiseless_to_retrained=_num(diag.approx_error),
        released_to_original=_num(dist.get("unlearned_to_original")),
        mia_released=score("unlearned"),
        mia_retrained=score("retrained"),
        mia_original=score("original"),
        mia_n=_mia_n(data.get("n_forget"), data.get("n_test")),
        noise_norm=_num(diag.noise_norm),
        status=cert.status if cert is not None else None,
        epsilon=cert.epsilon if cert is not None else None,
        delta=cert.delta_guaranteed if cert is not None else None,
        sigma_used=cert.sigma_used if cert is not None else None,
        certificate=cert,
        unlearn_s=_num(timing.get("unlearn")),
        retrain_s=_num(timing.get("retrain")),
        simulation=_simulation(cert),
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

    Rows are :func:`unlearn_core.experiments.compare`'s (``acc_*``, ``dist_to_retrained``, ``dist_to_original``,
    ``mia_loss_auc``, ``status``, ``epsilon``, ``sigma_used``, ``time_s``, ``n_forget``, optionally
    ``acc_*_noiseless``), possibly averaged over seeds.
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
    n_test = n_test if n_test is not None else (int(row["n_test"]) if _num(row.get("n_test")) else None)
    mia_key = f"mia_{MIA_SCORE}"
    return Evidence(
        method=str(row.get("method", "?")),
        family=str(row.get("family", "?")),
        released=released,
        retrained=ref,
        original=orig,
        noiseless=noiseless,
        num_classes=num_classes,
        n_forget=int(n_forget) if n_forget is not None else None,
        n_test=n_test,
        distance_to_retrained=_num(row.get("dist_to_retrained")),
        original_to_retrained=_num((original or {}).get("dist_to_retrained")),
        noiseless_to_retrained=_num(row.get("approx_error")),
        released_to_original=_num(row.get("dist_to_original")),
        mia_released=_num(row.get(mia_key)),
        mia_retrained=_num((retrained or {}).get(mia_key)),
        mia_original=_num((original or {}).get(mia_key)),
        mia_n=_mia_n(n_forget, n_test),
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
        tone: the colour (:func:`verdict_tone` of ``forgetting`` and ``guarantee``; :data:`COLOUR_RULE`).
        label: a few words for tables ("works", "nothing measurable to forget", "noise destroyed the model"...).
        headline: one sentence.
        answers: the three questions — ``like_retraining``, ``certified``, ``cost`` — in that order.
        forgetting: what the forgetting tests found (:data:`FORGETTING`); ``evidence`` names the test that
            measured it ("accuracy", "membership inference", "distance"), ``None`` when none could.
        guarantee: what the guarantee is (:data:`GUARANTEES`).
        like_retraining: whether the released model passes the accuracy test (``None``: no retrained model) — read
            it with ``forgetting``: the original model may pass it too.
        unchanged: the released weights are the original's (a no-op).
        destroyed: whether the released model keeps less than half of the retrained model's margin over chance.
        test_gap, forget_gap: released − retrained accuracy (fractions); ``*_tolerance``: what they were judged by.
        distance_ratio: ‖w_released − w_retrained‖ / ‖w_original − w_retrained‖.
        distance_note: how to read that distance (noise-dominated releases say so), for the page beside the number.
        noiseless_like_retraining, noiseless_distance_ratio: the same for the estimate before the noise.
        original_like_retraining: whether the original model itself passes the accuracy test (the control).
        speedup: retraining time / unlearning time (> 1: unlearning is faster).
    """

    tone: str
    label: str
    headline: str
    answers: list[Answer]
    forgetting: str = "unknown"
    guarantee: str = "none"
    evidence: str | None = None
    like_retraining: bool | None = None
    unchanged: bool = False
    destroyed: bool = False
    test_gap: float | None = None
    forget_gap: float | None = None
    test_tolerance: float | None = None
    forget_tolerance: float | None = None
    distance_ratio: float | None = None
    distance_note: str = ""
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


_pct = fmt.percent


def _pts(gap: float) -> str:
    return fmt.points(gap, signed=False)


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



def _closed_percent(ratio: float) -> str:
    """How much of the original's distance to the retrained model a step closes, 100·(1 − ratio), as people read it:
    three significant digits, never an exponent ("99.97" shows as "100", not "1e+02"), and never "100" for a step
    that leaves any distance ("> 99.9")."""
    closed = 100.0 * (1.0 - float(ratio))
    if ratio > 0 and closed >= 99.95:
        return "> 99.9"
    return f"{closed:.3g}" if abs(closed) >= 0.01 else f"{closed:.2g}"

def _ratio_text(ratio: float | None, *, whose: str) -> str:
    """The parameter-distance ratio, in words."""
    if ratio is None:
        return ""
    closes = f", closing {_closed_percent(ratio)} % of it" if ratio < 1 else ""
    return f" ({whose} distance to the retrained model in parameter space: {fmt.sig(ratio)}× the original's{closes}.)"


def _mia_pass(score: float | None, ev: Evidence, th: Thresholds) -> bool | None:
    """Whether a model's loss-attack AUC is within :func:`mia_tolerance` of the retrained model's (``None``: not
    measured)."""
    if score is None or ev.mia_retrained is None:
        return None
    return abs(score - ev.mia_retrained) <= mia_tolerance(n=ev.mia_n, thresholds=th)


def _mia_text(ev: Evidence, th: Thresholds) -> str:
    tol = mia_tolerance(n=ev.mia_n, thresholds=th)
    return (f"loss-attack AUC {fmt.sig(ev.mia_released)} vs {fmt.sig(ev.mia_retrained)} retrained, original "
            f"{fmt.sig(ev.mia_original)} (tolerance ± {fmt.sig(tol, 2)})")


def _distance_note(ev: Evidence, ratio: float | None, noiseless_ratio: float | None) -> str:
    """How to read ‖w_released − w_retrained‖: beside a noisy release, the number mostly measures the noise."""
    if ev.distance_to_retrained is None:
        return ""
    noisy = (ev.sigma_used or 0) > 0 or (ev.noise_norm or 0) > 0
    base = (f"{fmt.sig(ratio)}× the original model's distance ({fmt.sig(ev.original_to_retrained)})"
            if ratio is not None else "")
    if noisy and ratio is not None and ratio > 1:
        noise = f" (‖noise‖ = {fmt.sig(ev.noise_norm)})" if ev.noise_norm else ""
        text = (f"{base}: dominated by the release noise{noise}, which the certificate requires — it is not a "
                "failure to forget")
        if ev.noiseless_to_retrained is not None:
            text += (f"; before the noise the estimate is at {fmt.sig(ev.noiseless_to_retrained)} "
                     f"({fmt.sig(noiseless_ratio)}× the original's)")
        return text + "."
    if ev.released_to_original is not None and ev.released_to_original == 0:
        return f"{base}: the released weights are the original's (nothing changed)."
    return f"{base}." if base else ""


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


def _guarantee(ev: Evidence) -> str:
    if ev.family == "oracle":
        return "exact"
    if ev.status == CERTIFIED:
        return "proof"
    if ev.status == UNDER_ASSUMPTIONS:
        return "assumptions"
    if ev.status == NOT_CERTIFIED:
        return "fails"
    return "none"


def _budget(ev: Evidence) -> str:
    return ", ".join(x for x in (f"ε = {ev.epsilon:g}" if ev.epsilon is not None else "",
                                 f"δ = {ev.delta:.3g}" if ev.delta is not None else "") if x)


def _short_statement(statement: str) -> str:
    """A condition's statement without its explanation in brackets: "λ + λ_min > 0 (the regularised Hessian is
    positive definite)" → "λ + λ_min > 0" (a headline must be read in seconds; the answer keeps the whole)."""
    head = statement.split(" (", 1)[0].strip()
    return head or statement


def _first_failing(ev: Evidence) -> str:
    """The first failing condition in a few words (``""`` when unknown)."""
    if ev.certificate is not None and ev.certificate.failing():
        return _short_statement(ev.certificate.failing()[0].statement)
    return ""


def _certification(ev: Evidence, released: _Behaviour | None) -> Answer:
    q = "Certified?"
    if ev.family == "oracle":
        return Answer("certified", q, "Not needed: retrained without the forget set.", "No certificate is needed: the "
                      "model was retrained without the forget set, so it never saw it.", "success")
    if ev.status is None:
        return Answer("certified", q, f"No — {ev.family} method, no (ε, δ) guarantee.",
                      f"No: {ev.method} is {ev.family} and claims no (ε, δ) certificate.", "info")
    budget = _budget(ev)
    simulation = (" Simulation, not a release: the release noise was seeded, so anyone with the run card can "
                  "regenerate it." if ev.simulation else "")
    if ev.status == NOT_CERTIFIED:
        short, detail = "No.", "No: not certified."
        if ev.certificate is not None and ev.certificate.failing():
            first = ev.certificate.failing()[0]
            short = f"No — {first.statement} fails."
            detail = (f"No: {first.statement} fails ({first.value}; needs {first.requirement})"
                      + (f". Fix: {first.fix}." if first.fix else "."))
        tone = "error" if released is not None and released.destroyed else "warning"
        return Answer("certified", q, short, detail + simulation, tone)
    soft = ev.certificate.soft_constants() if ev.certificate is not None else []
    if ev.status == CERTIFIED:
        short = f"Yes — certified at {budget}."
        detail = f"Yes: {CERTIFIED} at {budget}; every condition of the theorem holds and every constant is a bound."
        tone = "success"
    else:
        names = ", ".join(c.name for c in soft)
        short = f"Yes, under assumptions ({names}) — {budget}." if names else f"Yes, under assumptions — {budget}."
        detail = (f"Yes: {UNDER_ASSUMPTIONS} at {budget}; every condition holds, and the guarantee rests on "
                  + (", ".join(f"{c.name} ({c.tag})" for c in soft) if soft else "stated assumptions")
                  + " — not a proof.")
        tone = "info"  # "under assumptions" is never coloured like a proof
    if ev.simulation:
        short += " Simulation, not a release."
        detail += simulation
    if released is not None and released.destroyed and ev.retrained is not None:
        sigma = f" (σ = {fmt.sig(ev.sigma_used)})" if ev.sigma_used else ""
        short += f" But the noise{sigma} destroyed the model."
        detail += (f" But the noise{sigma} destroyed the model: test accuracy {_pct(ev.released.test)} vs "
                   f"{_pct(ev.retrained.test)} retrained.")
        return Answer("certified", q, short, detail, "error")
    return Answer("certified", q, short, detail, tone)


def _status_phrase(ev: Evidence, *, capital: bool = False) -> str:
    """The certificate's status in words for a headline: never "certifies" unless it does."""
    at_eps = f" at ε = {ev.epsilon:g}" if ev.epsilon is not None else ""
    if ev.status == CERTIFIED:
        text = f"certified{at_eps}"
    elif ev.status == UNDER_ASSUMPTIONS:
        text = f"certified under assumptions{at_eps}"
    elif ev.status == NOT_CERTIFIED:
        failing = _first_failing(ev)
        text = f"not certified ({failing} fails)" if failing else "not certified"
    elif ev.family == "oracle":
        text = "exact"
    else:
        text = f"no certificate ({ev.family} method)"
    if ev.simulation:
        text += "; a simulation, not a release"
    return text[:1].upper() + text[1:] if capital else text


def judge(evidence: Evidence, *, thresholds: Thresholds = THRESHOLDS) -> Verdict:
    """The verdict on one run (see the module docstring for the rules)."""
    ev, th = evidence, thresholds
    cost, speedup = _cost(ev)
    ratio = (ev.distance_to_retrained / ev.original_to_retrained
             if ev.distance_to_retrained is not None and ev.original_to_retrained else None)
    noiseless_ratio = (ev.noiseless_to_retrained / ev.original_to_retrained
                       if ev.noiseless_to_retrained is not None and ev.original_to_retrained else None)
    note = _distance_note(ev, ratio, noiseless_ratio)
    guarantee = _guarantee(ev)
    q = "Like retraining?"

    if ev.family == "oracle":
        like = Answer("like_retraining", q, "It is retraining.", "It is retraining: the reference every other method "
                      "is measured against.", "success")
        return Verdict(tone=verdict_tone("forgets", "exact"), label="exact (retrained)",
                       headline="Exact unlearning: the model was retrained from scratch without the forget set — the "
                       "gold standard, at the full cost of retraining.", answers=[like, _certification(ev, None), cost],
                       forgetting="forgets", guarantee="exact", evidence="retraining", like_retraining=True,
                       speedup=speedup, distance_ratio=ratio, distance_note=note, rules=rules_text(th))

    released = _behaviour(ev.released, ev, th, who="The released model")
    certified = _certification(ev, released)
    status = _status_phrase(ev)
    if released is None:
        like = Answer("like_retraining", q, "Unknown: no retrained model.", "Unknown: no retrained model was trained "
                      "to compare with.", "info")
        return Verdict(tone=verdict_tone("unknown", guarantee), label="no reference",
                       headline=f"No retrained model to compare with, so whether the method forgot cannot be judged; "
                       f"{status}.", answers=[like, certified, cost], forgetting="unknown", guarantee=guarantee,
                       distance_ratio=ratio, distance_note=note, speedup=speedup, rules=rules_text(th))
    ref = ev.retrained
    assert ref is not None
    # The noise-free estimate, when the method reports it and the noise changed the model.
    noiseless = None
    if ev.noiseless is not None and (ev.sigma_used or 0) > 0 and ev.noiseless != ev.released:
        noiseless = _behaviour(ev.noiseless, ev, th, who="Before the noise, the method's own estimate")
    original = _behaviour(ev.original, ev, th, who="The original model") if ev.original is not None else None
    unchanged = ev.released_to_original is not None and ev.released_to_original == 0.0

    # -- the control: which test separates the original from the retrained model? ------------------------------
    accuracy_separates = original is not None and not original.like
    mia_original = _mia_pass(ev.mia_original, ev, th)
    mia_separates = mia_original is False
    mia_released = _mia_pass(ev.mia_released, ev, th)
    step_ratio = noiseless_ratio if noiseless is not None or (ev.sigma_used or 0) > 0 else ratio
    distance_shows = step_ratio is not None and step_ratio <= th.distance_ratio and not unchanged

    detail = released.sentence + _ratio_text(ratio, whose="Its")
    if noiseless is not None:
        detail += " " + noiseless.sentence + _ratio_text(noiseless_ratio, whose="The estimate's")
    control = ""
    if original is not None and ev.original is not None:
        control = (f"forget-set accuracy {_pct(ev.original.forget)} vs {_pct(ref.forget)} retrained, test "
                   f"{_pct(ev.original.test)} vs {_pct(ref.test)}")

    evidence_name: str | None = None
    if released.destroyed:
        forgetting = "destroyed"
    elif not released.like:
        forgetting = "fails"
    elif accuracy_separates:
        forgetting, evidence_name = "forgets", "accuracy"
        if mia_separates and mia_released is False:
            forgetting, evidence_name = "fails", "membership inference"
    elif mia_separates:
        forgetting, evidence_name = ("forgets" if mia_released else "fails"), "membership inference"
    elif distance_shows:
        forgetting, evidence_name = "forgets", "distance"
    else:
        forgetting = "unmeasurable"

    # -- the "Like retraining?" answer ------------------------------------------------------------------------------
    short = released.short
    if forgetting == "unmeasurable":
        why = ("the released weights are the original's, and " if unchanged else "")
        measured = "accuracy" + (" and membership inference" if mia_original is not None else "")
        assert ev.original is not None
        short = (f"Cannot tell: {why}the original passes the same test (forget set {_pct(ev.original.forget)} vs "
                 f"{_pct(ref.forget)}).")
        detail += (f" The control: the original model, before any unlearning, passes the same tests ({control}"
                   + (f"; loss-attack AUC {fmt.sig(ev.mia_original)} vs {fmt.sig(ev.mia_retrained)} retrained"
                      if ev.mia_original is not None and ev.mia_retrained is not None else "")
                   + f"), so {measured} cannot tell forgetting from doing nothing on this forget set. "
                   + ("The method returned the original weights unchanged. " if unchanged else "")
                   + ("The certificate is the evidence of forgetting here." if guarantee in ("proof", "assumptions")
                      else "A method that does nothing would pass too; the Audit page's per-example test or a "
                           "forget set the model memorised (a whole class) can show forgetting."))
    elif forgetting == "forgets" and evidence_name == "membership inference":
        short = f"Yes — by membership inference: {_mia_text(ev, th)}; accuracy cannot tell (the original passes it)."
        detail += f" Membership inference separates the original from the retrained model: {_mia_text(ev, th)}."
    elif forgetting == "forgets" and evidence_name == "distance":
        short = (f"Yes — the step closes {_closed_percent(step_ratio)} % of the original's distance to the retrained "
                 "model; accuracy cannot tell (the original passes it).")
    elif forgetting == "fails" and evidence_name == "membership inference":
        short = f"No — membership inference still tells the forget set apart: {_mia_text(ev, th)}."
        detail += f" Membership inference: {_mia_text(ev, th)}."
    if noiseless is not None and released.destroyed and noiseless.like:
        caveat = "" if accuracy_separates else " — as is the original's, so this shows no forgetting"
        short = (f"Before the noise, yes (test {_pct(ev.noiseless.test)}{caveat}); after it, no: test "  # type: ignore
                 f"{_pct(ev.released.test)} vs {_pct(ref.test)} retrained.")
    like_tone = {"forgets": "success", "unmeasurable": "info", "fails": "warning", "destroyed": "error"}[forgetting]
    like = Answer("like_retraining", q, short, detail, like_tone)

    # -- the headline and the label ---------------------------------------------------------------------------------
    tone = verdict_tone(forgetting, guarantee)
    both = (f"test accuracy {_pct(ev.released.test)} vs {_pct(ref.test)}, forget set "
            f"{_pct(ev.released.forget)} vs {_pct(ref.forget)}")
    if forgetting == "destroyed":
        by_noise = (ev.sigma_used or 0) > 0
        label = "noise destroyed the model" if by_noise else "model destroyed"
        certifies = ev.status in (CERTIFIED, UNDER_ASSUMPTIONS)
        if by_noise:
            lead = (f"{_status_phrase(ev, capital=True)}, but the noise destroyed the model" if certifies
                    else f"The noise destroyed the model, and the run is {status}")
        else:
            lead = f"The model is destroyed; {status}"
        headline = f"{lead}: test accuracy {_pct(ev.released.test)} vs {_pct(ref.test)} retrained."
        if noiseless is not None and noiseless.like:
            assert ev.noiseless is not None
            if noiseless_ratio is not None and noiseless_ratio < th.distance_ratio:
                step = (f"The step itself lands next to the retrained model ({fmt.sig(noiseless_ratio, 2)}× the "
                        "original's distance from it)")
            elif accuracy_separates:
                step = (f"Before the noise the model forgets like retraining (test accuracy "
                        f"{_pct(ev.noiseless.test)} vs {_pct(ref.test)})")
            else:
                step = (f"Before the noise the model is as accurate as retraining (test accuracy "
                        f"{_pct(ev.noiseless.test)} vs {_pct(ref.test)}) — and so is the original, so that shows "
                        "no forgetting")
            noise = "the noise that certifies it" if certifies else "the noise added"
            headline = (f"{step}, but {noise} destroyed the model: test accuracy {_pct(ev.released.test)} vs "
                        f"{_pct(ref.test)} retrained ({status}).")
    elif forgetting == "forgets":
        how = {"accuracy": both, "membership inference": _mia_text(ev, th),
               "distance": f"the step closes {_closed_percent(step_ratio or 1)} % of the distance; {both}"}[
            evidence_name or "accuracy"]
        if guarantee == "proof":
            label, headline = "works", f"Works: forgets like retraining ({how}) and is {status}."
        elif guarantee == "assumptions":
            label = "works (under assumptions)"
            headline = f"Forgets like retraining ({how}) and is {status} — not a proof."
        elif guarantee == "fails":
            label, headline = "forgets, not certified", f"Forgets like retraining ({how}), but is {status}."
        else:
            label = "forgets, no certificate"
            headline = f"Forgets like retraining ({how}); {status}."
    elif forgetting == "unmeasurable":
        label = "unchanged: nothing measurable to forget" if unchanged else "nothing measurable to forget"
        what = "Returned the original model unchanged" if unchanged else "As accurate as retraining"
        assert ev.original is not None
        headline = (f"{what}, but nothing measurable was left to forget: the original passes the same test (forget "
                    f"set {_pct(ev.original.forget)} vs {_pct(ref.forget)} retrained). "
                    f"{_status_phrase(ev, capital=True)}"
                    + (" — the certificate is the evidence of forgetting here." if guarantee in ("proof",
                                                                                                 "assumptions")
                       else "."))
    else:  # fails
        if evidence_name == "membership inference":
            label = "still remembers (membership inference)"
            headline = f"Still remembers the forget set by membership inference: {_mia_text(ev, th)}; {status}."
        else:
            label = {"remembers": "still remembers the forget set", "over_forgets": "over-forgets",
                     "loses_accuracy": "loses accuracy"}[released.kind]
            detail_text = (f"test accuracy {_pct(ev.released.test)} vs {_pct(ref.test)} retrained"
                           if released.kind == "loses_accuracy" else
                           f"forget-set accuracy {_pct(ev.released.forget)} vs {_pct(ref.forget)} retrained")
            headline = f"{label.capitalize()}: {detail_text}; {status}."
            # "Does not forget" only when neither the weights nor what the model computes moved: the forget-set
            # accuracy is still at least 90 % as far from the retrained model's as the original's (fine-tuning
            # that takes the digit 3 from 95 % to 4.8 % against 0 % still remembers a little; it is not a no-op).
            original_gap = (ev.original.forget - ref.forget) if ev.original is not None else None
            barely = original_gap is None or (original_gap > 0 and released.forget_gap >= 0.9 * original_gap)
            if released.kind == "remembers" and ratio is not None and ratio > 0.9 and barely:
                label = "does not forget"
                headline = (f"Does not forget: {detail_text}, and the weights barely moved towards the retrained "
                            f"model ({100 * (1 - ratio):.2g} % of the distance closed); {status}.")
    return Verdict(
        tone=tone, label=label, headline=headline, answers=[like, certified, cost], forgetting=forgetting,
        guarantee=guarantee, evidence=evidence_name, like_retraining=released.like, unchanged=unchanged,
        destroyed=released.destroyed, test_gap=released.test_gap, forget_gap=released.forget_gap,
        test_tolerance=released.test_tol, forget_tolerance=released.forget_tol, distance_ratio=ratio,
        distance_note=note, noiseless_like_retraining=noiseless.like if noiseless is not None else None,
        noiseless_distance_ratio=noiseless_ratio,
        original_like_retraining=original.like if original is not None else None, speedup=speedup,
        rules=rules_text(th),
    )


#: Which conditions each term of certified Newton's Δ needs: the term is infinite when one of them fails.
TERM_CONDITIONS: dict[str, tuple[str, ...]] = {
    "exact": ("curvature_floor",), "nonconvergence": ("curvature_floor",), "a_posteriori": ("curvature_floor",),
    "lissa": ("curvature_floor", "lissa_sampled_floor", "lissa_depth"),
}
#: Short names of the terms, for "∞ (the LiSSA term: …)".
TERM_NAMES = {"exact": "exact term", "nonconvergence": "non-convergence term", "lissa": "LiSSA term",
              "a_posteriori": "residual term"}


def not_certified_cause(cert: Certificate | None) -> str | None:
    """Why a certificate is not certified, in a few words: its first failing condition other than the noise (the
    noise condition fails *because* of the others), else the noise's; ``None`` when it is certified."""
    if cert is None or cert.status != NOT_CERTIFIED:
        return None
    failing = cert.failing()
    if not failing:
        return None
    first = next((c for c in failing if c.name != "noise"), failing[0])
    return f"{first.statement} fails"


def infinite_cause(cert: Certificate | None) -> str | None:
    """Why the bound Δ (and so σ required) is infinite, in a few words — the true cause, from the certificate's own
    conditions (issue 20: a sweep blamed "λ + λ_min ≤ 0" at λ = 1, where λ + λ_min = 0.92 and the LiSSA lemma's
    sampled-Hessian condition was what failed). ``None`` when Δ is finite or absent."""
    if cert is None or cert.sensitivity is None or math.isfinite(cert.sensitivity):
        return None
    failing = {c.name: c for c in cert.failing()}
    infinite_terms = [k for k, v in cert.sensitivity_terms.items() if v is None or not math.isfinite(v)]
    for term in infinite_terms:
        for name in TERM_CONDITIONS.get(term, ()):
            if name in failing:
                return f"{TERM_NAMES.get(term, term)}: {failing[name].statement} fails"
    other = [c for c in cert.failing() if c.name != "noise"]
    if other:
        return f"{other[0].statement} fails"
    return "a hypothesis of the bound fails"


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
