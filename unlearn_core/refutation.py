r"""Certified ε against attacked ε: what an attack's lower bound says about a certificate.

A certificate is an *upper* bound: the released model is (ε, δ)-indistinguishable from the noisy retrain. An attack
with a confidence bound gives a *lower* bound on the ε of the same pair. So:

* a lower bound **above** the certified ε proves the certificate false for this run — its maths or one of its
  hypotheses (an assumed constant, a convexity it relies on) is wrong: the certificate is **refuted**;
* a lower bound **at or below** it proves nothing: the certificate is a worst case over all data sets and all
  attacks, the attack tried one data set and finitely many models. *An attack can refute a certificate but never
  confirm it.*

Three ε's meet here, and the reading keeps them apart:

``epsilon``
    the ε the user asked for (the method's target);
``epsilon_certified``
    the ε the bound actually certifies at the noise used (:class:`~unlearn_core.certificate.Certificate`); for a
    run labelled *certified* it is at most ``epsilon``; for a run labelled *not certified* (σ below σ_required)
    it is larger (∞ when the bound is infinite);
an attack's lower bound
    from a test on the certified pair — the audit's Clopper–Pearson bound
    (:func:`unlearn_core.experiments.audit`) or U-LiRA's against the noisy retrain (:mod:`unlearn_core.ulira`).
    Estimates (the challenge's per-example ε, U-LiRA's point ε) are biased upwards and never refute anything.

What "refuted" means for a run already labelled *not certified* (the question a user asks when σ is set below
σ_required): that label issues no certificate for the requested ε, so an attack above the requested ε refutes the
*request*, not a certificate — it **confirms the label's warning** (:data:`CLAIM_REFUTED`). The bound the tool does
state for that run, ``epsilon_certified`` at the σ used, can still be refuted, and then it is (:data:`REFUTED`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from unlearn_core.certificate import CERTIFIED, NOT_CERTIFIED

#: The readings, from the loudest.
REFUTED = "refuted"
CLAIM_REFUTED = "requested ε refuted"
NOT_REFUTED = "not refuted"
NO_ATTACK = "no attack bound"
NO_CERTIFICATE = "no certificate"
READINGS = (REFUTED, CLAIM_REFUTED, NOT_REFUTED, NO_ATTACK, NO_CERTIFICATE)

#: Said wherever the reading is shown.
NEVER_CONFIRMS = "An attack can refute a certificate, never confirm it."

#: Slack for floating-point ties (a bound equal to ε does not refute it).
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Reading:
    """The verdict of the attacks on one run's certificate."""

    kind: str
    attacked_epsilon: float | None
    attacked_by: str | None
    text: str


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if not math.isnan(v) else None


def read_certificate(*, status: str | None, epsilon: float | None, epsilon_certified: float | None,
                     lower_bounds: Mapping[str, float | None], alpha: float = 0.05) -> Reading:
    """Read a run's certificate against the attacks' lower bounds (name → bound on the certified pair's ε).

    ``status`` is the certificate's (``certified``, ``under assumptions``, ``not certified``…; ``None`` = the method
    issues no certificate). The strongest bound decides: above ``epsilon_certified`` → :data:`REFUTED`; else, for a
    run not certified, above the requested ``epsilon`` → :data:`CLAIM_REFUTED`; else :data:`NOT_REFUTED`. Each bound
    holds with confidence 1 − ``alpha``.
    """
    bounds = {k: v for k, v in ((k, _finite(v)) for k, v in lower_bounds.items()) if v is not None}
    best_by = max(bounds, key=lambda k: bounds[k]) if bounds else None
    best = bounds[best_by] if best_by is not None else None
    if status is None:
        what = f" (strongest attack: ε ≥ {best:.3g} by {best_by})" if best is not None else ""
        return Reading(NO_CERTIFICATE, best, best_by, f"No certificate to test{what}.")
    if best is None:
        return Reading(NO_ATTACK, None, None, f"No attack bound was computed. {NEVER_CONFIRMS}")
    certified = _finite(epsilon_certified)
    requested = _finite(epsilon)
    if certified is not None and math.isfinite(certified) and best > certified + TOLERANCE:
        what = {CERTIFIED: "its maths or a hypothesis it checks must be wrong for this run",
                NOT_CERTIFIED: "the label already said a condition fails; this shows that it matters"}.get(
            status, "an assumption it rests on must be wrong for this run")
        return Reading(REFUTED, best, best_by,
                       f"CERTIFICATE REFUTED: {best_by} shows ε ≥ {best:.3g} with {100 * (1 - alpha):g} % confidence, "
                       f"above the "
                       f"ε = {certified:.3g} the bound certifies at the σ used — {what}.")
    if status == NOT_CERTIFIED and requested is not None and best > requested + TOLERANCE:
        return Reading(CLAIM_REFUTED, best, best_by,
                       f"The requested ε = {requested:.3g} is refuted ({best_by}: ε ≥ {best:.3g}), as the label "
                       f"'not certified' warned: no certificate was issued for it, so none is refuted"
                       + (f" (the bound at this σ, ε = {certified:.3g}, stands)." if certified is not None
                          and math.isfinite(certified) else "."))
    if certified is not None and math.isfinite(certified):
        where = f", not above the certified ε = {certified:.3g}"
    elif requested is not None:  # nothing is certified: the requested ε is only a request (a label is a claim)
        where = (f", not above the requested ε = {requested:.3g} — which no certificate covers: the run is "
                 f"{status}")
    else:
        where = ""
    return Reading(NOT_REFUTED, best, best_by,
                   f"Not refuted: the strongest attack ({best_by}) shows ε ≥ {best:.3g}{where}. {NEVER_CONFIRMS}")
