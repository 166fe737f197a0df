"""The verdict (unlearn_core.verdict) on hand-made run cards: every rule, the stated thresholds, and the sentences
the dashboard, the CLI and the HTML report show.

The cards are built by hand, with the numbers of the runs that motivated the verdict (issue 12): the quick demo whose
certified noise left 11 % test accuracy against 94 % retrained, the paper's MNIST setting whose forget accuracy went
0.991 → 0.996 against 0.974 retrained, noisy fine-tuning at ε = 1 within 2 points of retraining.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from unlearn_core.certificate import ASSUMPTION, BOUND, Certificate, Condition, Constant
from unlearn_core.diagnostics import Diagnostics, SplitAccuracy
from unlearn_core.verdict import THRESHOLDS, judge, tolerance, verdict_from_card, verdicts_from_rows


def _acc(forget: float, test: float, retain: float = 0.97) -> dict[str, float]:
    return {"acc_forget": forget, "acc_retain": retain, "acc_test": test, "loss_forget": 0.2, "loss_retain": 0.1,
            "loss_test": 0.2}


def _certificate(*, holds: bool = True, tags: tuple[str, ...] = (BOUND,), sigma: float = 0.05) -> dict:
    conditions = [Condition("noise", "noise σ_used ≥ σ_required", f"σ_used = {sigma}", "σ_used ≥ σ_required", True),
                  Condition("curvature_floor", "λ + λ_min > 0 (the regularised Hessian is positive definite)",
                            "0.01 + (-0.35) = -0.34", "> 0", holds, fix="raise lam above 0.35")]
    constants = [Constant(f"c{i}", 1.0, tag, "hand-made") for i, tag in enumerate(tags)]
    return Certificate(method="m", theorem="t", epsilon=1.0, delta=1e-5, delta_guaranteed=1e-5, accountant="a",
                       sigma_required=sigma, sigma_used=sigma, epsilon_certified=1.0, sensitivity=None,
                       conditions=conditions, constants=constants).to_dict()


def _card(*, unlearned: dict, retrained: dict | None = None, original: dict | None = None, family: str = "certified",
          certificate: dict | None = None, noiseless: SplitAccuracy | None = None, approx_error: float | None = None,
          unlearn_s: float = 0.5, retrain_s: float = 1.0, n_forget: int = 1000, n_test: int = 10_000,
          dist: float = 1.0) -> dict:
    models = {"original": original or _acc(0.99, 0.95), "unlearned": unlearned}
    if retrained is not None:
        models["retrained"] = retrained
    return {
        "method": {"name": "m", "family": family},
        "data": {"n_forget": n_forget, "n_test": n_test, "num_classes": 10},
        "models": models,
        "distance": {"unlearned_to_retrained": dist, "original_to_retrained": 2.0},
        "timing_s": {"train": 1.0, "retrain": retrain_s, "unlearn": unlearn_s},
        "certificate": certificate,
        "diagnostics": Diagnostics(noiseless_accuracy=noiseless, approx_error=approx_error).to_dict(),
    }


def test_certified_and_useful_works() -> None:
    v = verdict_from_card(_card(unlearned=_acc(0.955, 0.958), retrained=_acc(0.96, 0.942),
                                certificate=_certificate()))
    assert (v.tone, v.label, v.like_retraining, v.destroyed) == ("success", "works", True, False)
    assert v.headline.startswith("Works: forgets like retraining (test accuracy 95.8 % vs 94.2 %")
    assert (v.forgetting, v.guarantee, v.evidence) == ("forgets", "proof", "accuracy")
    assert v.headline.endswith("and is certified at ε = 1.")
    assert v.answer("certified").short == "Yes — certified at ε = 1, δ = 1e-05."
    assert v.test_gap == pytest.approx(0.016)
    assert v.answer("cost").short == "Unlearning 0.50 s vs retraining 1.00 s: 2.0× faster." and v.speedup == 2.0


def test_certified_but_the_noise_destroyed_the_model() -> None:
    """The quick demo of the first release: certified, 11 % test accuracy against 94 % retrained. Red, not green."""
    card = _card(unlearned=_acc(0.10, 0.11), retrained=_acc(0.93, 0.94), certificate=_certificate(sigma=2.5e6),
                 noiseless=SplitAccuracy(forget=0.94, retain=0.97, test=0.95), approx_error=2.06)
    v = verdict_from_card(card)
    assert (v.tone, v.label, v.destroyed) == ("error", "noise destroyed the model", True)
    assert "but the noise that certifies it destroyed the model: test accuracy 11.0 % vs 94.0 % retrained" in v.headline
    assert v.headline.startswith("Before the noise the model forgets like retraining")  # ratio 1.03: no closer
    assert v.answer("certified").tone == "error"
    assert v.answer("certified").short.endswith("But the noise (σ = 2.5 × 10⁶) destroyed the model.")
    assert v.answer("like_retraining").short == "Before the noise, yes (test 95.0 %); after it, no: test 11.0 % vs " \
                                                "94.0 % retrained."
    assert v.noiseless_like_retraining is True
    without_estimate = verdict_from_card({**card, "diagnostics": Diagnostics().to_dict()})
    assert without_estimate.headline == ("Certified at ε = 1, but the noise destroyed the model: test accuracy 11.0 % "
                                         "vs 94.0 % retrained.")


def test_a_step_that_lands_on_the_retrained_model_is_said_so() -> None:
    """The convex preset: the noise-free step at 0.05 × the original's distance, the release destroyed."""
    card = _card(unlearned=_acc(0.08, 0.05), retrained=_acc(0.95, 0.96), certificate=_certificate(
        tags=(BOUND, ASSUMPTION), sigma=6e5), noiseless=SplitAccuracy(forget=0.95, retain=0.97, test=0.96),
        approx_error=0.1)
    v = verdict_from_card(card)
    assert v.tone == "error" and v.noiseless_distance_ratio == pytest.approx(0.05)
    assert v.headline.startswith("The step itself lands next to the retrained model (0.05× the original's distance")
    assert "(certified under assumptions at ε = 1)" in v.headline
    assert v.answer("certified").short.startswith("Yes, under assumptions (c1) — ε = 1, δ = 1e-05.")


def test_the_paper_setting_does_not_forget_and_says_so() -> None:
    """MNIST MLP, λ = 0.01: forget accuracy 0.991 → 0.996 against 0.974 retrained, the step closes 0.02 % of the
    distance, Δ = ∞ (λ + λ_min ≤ 0): not certified, and not forgotten."""
    card = _card(unlearned=_acc(0.996, 0.975), retrained=_acc(0.974, 0.969), original=_acc(0.991, 0.975),
                 certificate=_certificate(holds=False, sigma=0.0), dist=11.0966 / 11.0985 * 2.0)
    v = verdict_from_card(card)
    # Both fail — it does not forget and it is not certified — so red, not the yellow of issue 20 (one rule).
    assert (v.tone, v.label, v.like_retraining) == ("error", "does not forget", False)
    assert v.headline.startswith("Does not forget: forget-set accuracy 99.6 % vs 97.4 % retrained, and the weights "
                                 "barely moved towards the retrained model (0.017 % of the distance closed)")
    assert v.headline.endswith("not certified (λ + λ_min > 0 fails).")
    certified = v.answer("certified")
    assert certified.short == "No — λ + λ_min > 0 (the regularised Hessian is positive definite) fails."
    assert "Fix: raise lam above 0.35." in certified.detail
    assert v.forget_gap == pytest.approx(0.022) and v.forget_tolerance == pytest.approx(0.02)


def test_over_forgetting_and_lost_accuracy_are_failures_too() -> None:
    over = verdict_from_card(_card(unlearned=_acc(0.60, 0.93), retrained=_acc(0.93, 0.94), family="heuristic"))
    assert (over.tone, over.label) == ("warning", "over-forgets")
    assert over.answer("certified").short == "No — heuristic method, no (ε, δ) guarantee."
    lost = verdict_from_card(_card(unlearned=_acc(0.90, 0.80), retrained=_acc(0.92, 0.94), family="approximate"))
    assert (lost.tone, lost.label, lost.destroyed) == ("warning", "loses accuracy", False)


def test_like_retraining_without_a_certificate_is_blue_not_green() -> None:
    v = verdict_from_card(_card(unlearned=_acc(0.93, 0.94), retrained=_acc(0.93, 0.94), family="approximate"))
    assert (v.tone, v.label) == ("info", "forgets, no certificate")
    assert v.headline.endswith("; no certificate (approximate method).")


def test_retraining_is_exact_and_costs_a_retraining() -> None:
    card = _card(unlearned=_acc(0.93, 0.94), retrained=_acc(0.93, 0.94), family="oracle", unlearn_s=1.2)
    v = verdict_from_card(card)
    assert (v.tone, v.label) == ("success", "exact (retrained)")
    assert v.answer("cost").short == "Retraining: 1.20 s."


def test_cost_says_when_retraining_is_cheaper() -> None:
    v = verdict_from_card(_card(unlearned=_acc(0.93, 0.94), retrained=_acc(0.93, 0.94), certificate=_certificate(),
                                unlearn_s=2.0, retrain_s=0.5))
    cost = v.answer("cost")
    assert cost.short == "Unlearning 2.00 s vs retraining 0.50 s: retraining is cheaper here."
    assert cost.tone == "warning" and "retraining is 4.0× cheaper than unlearning" in cost.detail
    assert v.tone == "success"  # the cost colours its own line, not the verdict


def test_destroyed_threshold_is_half_the_margin_over_chance() -> None:
    """Retrained 94 %, ten classes: chance 10 %, margin 84 points, half of it 42: destroyed below 52 %."""
    retrained = _acc(0.93, 0.94)
    assert not verdict_from_card(_card(unlearned=_acc(0.5, 0.53), retrained=retrained)).destroyed
    assert verdict_from_card(_card(unlearned=_acc(0.5, 0.51), retrained=retrained)).destroyed
    assert THRESHOLDS.destroyed_fraction == 0.5


def test_tolerance_is_two_points_or_the_sampling_noise() -> None:
    assert tolerance(n=None, p=0.9) == 0.02
    assert tolerance(n=10_000, p=0.97) == 0.02  # a large set: the 2 points
    small = tolerance(n=144, p=0.9375)  # the digits forget set of random:0.1
    assert small == pytest.approx(1.96 * math.sqrt(2 * 0.9375 * 0.0625 / 144))
    assert small == pytest.approx(0.056, abs=1e-3)
    assert tolerance(n=144, p=0.0) == 0.02  # a forgotten class: no noise at 0 %


def test_the_original_model_within_tolerance_is_flagged() -> None:
    """On a small random forget set even doing nothing is within tolerance: the verdict says that accuracy cannot
    show forgetting there, and it is blue (certified, but nothing measurable to forget), not green."""
    card = _card(unlearned=_acc(0.903, 0.928), retrained=_acc(0.9375, 0.9417), original=_acc(0.958, 0.947),
                 certificate=_certificate(), n_forget=144, n_test=360)
    v = verdict_from_card(card)
    assert (v.tone, v.forgetting, v.label) == ("info", "unmeasurable", "nothing measurable to forget")
    assert v.original_like_retraining is True and v.like_retraining is True
    assert "cannot tell forgetting from doing nothing" in v.answer("like_retraining").detail
    short = v.answer("like_retraining").short
    assert short == "Cannot tell: the original passes the same test (forget set 95.8 % vs 93.8 %)."
    assert "nothing measurable was left to forget" in v.headline
    assert "the certificate is the evidence of forgetting here" in v.headline


def test_no_retrained_model_gives_no_judgement() -> None:
    v = verdict_from_card(_card(unlearned=_acc(0.9, 0.9), retrained=None, certificate=_certificate()))
    assert (v.tone, v.label, v.like_retraining) == ("info", "no reference", None)
    assert verdict_from_card({"experiment": {}}) is None  # an experiment's card has no unlearned model


def test_verdicts_from_compare_rows() -> None:
    rows = []
    for seed in (0, 1):
        rows += [
            {"seed": seed, "method": "original", "family": "reference", "acc_forget": 0.99, "acc_retain": 0.98,
             "acc_test": 0.95, "time_s": 10.0, "dist_to_retrained": 2.0, "status": None, "n_forget": 1000},
            {"seed": seed, "method": "retrained", "family": "reference", "acc_forget": 0.93, "acc_retain": 0.97,
             "acc_test": 0.94, "time_s": 9.0, "dist_to_retrained": 0.0, "status": None, "n_forget": 1000},
            {"seed": seed, "method": "noisy_finetune", "family": "certified", "acc_forget": 0.93, "acc_retain": 0.96,
             "acc_test": 0.935, "time_s": 1.0, "dist_to_retrained": 5.0, "n_forget": 1000, "epsilon": 1.0,
             "status": "certified" if seed == 0 else "not certified", "sigma_used": 0.04},
            {"seed": seed, "method": "certified_newton", "family": "certified", "acc_forget": 0.1, "acc_retain": 0.1,
             "acc_test": 0.1, "time_s": 2.0, "dist_to_retrained": 1e6, "n_forget": 1000, "epsilon": 1.0,
             "status": "certified under assumptions", "sigma_used": 1e6},
        ]
    verdicts = verdicts_from_rows(pd.DataFrame(rows), num_classes=10)
    assert list(verdicts) == ["noisy_finetune", "certified_newton"]  # reference rows are not judged
    assert verdicts["noisy_finetune"].label == "forgets, not certified"  # one seed uncertified → the row is
    assert verdicts["certified_newton"].label == "noise destroyed the model"
    assert verdicts["certified_newton"].answer("cost").short == "Unlearning 2.00 s vs retraining 9.00 s: 4.5× faster."


def test_judge_is_the_same_function_for_cards_and_rows() -> None:
    """One engine function: a card and the equivalent row give the same verdict."""
    card = _card(unlearned=_acc(0.955, 0.958), retrained=_acc(0.96, 0.942), certificate=_certificate(), n_test=None)
    from unlearn_core.verdict import evidence_from_card, evidence_from_rows

    from_card = judge(evidence_from_card(card))
    row = {"method": "m", "family": "certified", "status": "certified", "epsilon": 1.0, "delta": 1e-5,
           "sigma_used": 0.05, "time_s": 0.5, "dist_to_retrained": 1.0, "n_forget": 1000,
           **_acc(0.955, 0.958)}
    from_rows = judge(evidence_from_rows(row, retrained={**_acc(0.96, 0.942), "time_s": 1.0},
                                         original={**_acc(0.99, 0.95), "dist_to_retrained": 2.0}, num_classes=10))
    assert (from_card.tone, from_card.label, from_card.headline) == (from_rows.tone, from_rows.label,
                                                                      from_rows.headline)


# -- issue 20: one verdict that takes a control, one colour rule, wording from the status -----------------------


def test_the_colour_rule_is_one_rule_over_every_state() -> None:
    """green = forgets (measured) and a proof; blue = nothing fails but short of that; yellow = one fails; red =
    both fail or destroyed. Written out as a table, independently of the implementation."""
    from unlearn_core.verdict import FORGETTING, GUARANTEES, verdict_tone

    expected = {
        ("forgets", "exact"): "success", ("forgets", "proof"): "success", ("forgets", "assumptions"): "info",
        ("forgets", "none"): "info", ("forgets", "fails"): "warning",
        ("unmeasurable", "exact"): "info", ("unmeasurable", "proof"): "info", ("unmeasurable", "assumptions"): "info",
        ("unmeasurable", "none"): "info", ("unmeasurable", "fails"): "warning",
        ("unknown", "exact"): "info", ("unknown", "proof"): "info", ("unknown", "assumptions"): "info",
        ("unknown", "none"): "info", ("unknown", "fails"): "warning",
        ("fails", "exact"): "warning", ("fails", "proof"): "warning", ("fails", "assumptions"): "warning",
        ("fails", "none"): "warning", ("fails", "fails"): "error",
    }
    for g in GUARANTEES:
        expected[("destroyed", g)] = "error"
    assert {(f, g): verdict_tone(f, g) for f in FORGETTING for g in GUARANTEES} == expected
    with pytest.raises(ValueError):
        verdict_tone("works", "proof")


def test_under_assumptions_is_never_coloured_like_a_proof() -> None:
    """Issue 19: a guarantee that rests on estimates or assumed constants is blue, and its answer says it is not a
    proof; the same run with every constant a bound is green."""
    proof = verdict_from_card(_card(unlearned=_acc(0.955, 0.958), retrained=_acc(0.96, 0.942),
                                    certificate=_certificate()))
    soft = verdict_from_card(_card(unlearned=_acc(0.955, 0.958), retrained=_acc(0.96, 0.942),
                                   certificate=_certificate(tags=(BOUND, ASSUMPTION))))
    assert (proof.tone, proof.answer("certified").tone) == ("success", "success")
    assert (soft.tone, soft.answer("certified").tone, soft.label) == ("info", "info", "works (under assumptions)")
    assert soft.headline.endswith("certified under assumptions at ε = 1 — not a proof.")
    assert "not a proof" in soft.answer("certified").detail


def test_a_run_that_is_not_certified_is_never_said_to_be_certified_by_its_noise() -> None:
    """Issue 19, finding 5: the headline of a not-certified run whose noise destroyed the model said "the noise
    that certifies it destroyed the model … (not certified)". The first line now never says "certifies"."""
    card = _card(unlearned=_acc(0.10, 0.11), retrained=_acc(0.93, 0.94),
                 certificate=_certificate(holds=False, sigma=3.0),
                 noiseless=SplitAccuracy(forget=0.94, retain=0.97, test=0.95), approx_error=2.06)
    v = verdict_from_card(card)
    assert "certifies" not in v.headline and v.tone == "error"
    assert "the noise added destroyed the model" in v.headline and "(not certified (λ + λ_min > 0 fails))" in v.headline
    plain = verdict_from_card({**card, "diagnostics": Diagnostics().to_dict()})
    assert plain.headline.startswith("The noise destroyed the model, and the run is not certified")
    certified = verdict_from_card(_card(unlearned=_acc(0.10, 0.11), retrained=_acc(0.93, 0.94),
                                        certificate=_certificate(sigma=3.0)))
    assert certified.headline.startswith("Certified at ε = 1, but the noise destroyed the model")


def _noop_card(*, certificate: dict | None, family: str, mia: dict | None = None, dist: float = 1.0) -> dict:
    """A method that returned the original model: the released accuracies and weights are the original's, on a
    random forget set where the original is within 2 points of retraining (digits, random:0.1: 95.8 / 94.7 against
    93.8 / 94.2 retrained, 144 forget and 360 test points)."""
    card = _card(unlearned=_acc(0.9583, 0.9472), retrained=_acc(0.9375, 0.9417), original=_acc(0.9583, 0.9472),
                 certificate=certificate, family=family, n_forget=144, n_test=360, dist=2.0)
    card["distance"]["unlearned_to_original"] = 0.0
    if mia is not None:
        card["mia"] = mia
    return card


def test_a_method_that_does_nothing_is_never_like_retraining_without_the_caveat() -> None:
    """Issue 20, finding 1: default Explore (certified Newton, λ = 0.01) returned the original model, and the verdict
    said "Like retraining? Yes". Against the control it says nothing measurable was left to forget, names the
    no-op, and is not green whatever the certificate."""
    for family, cert, tone in (("approximate", None, "info"), ("certified", _certificate(holds=False), "warning"),
                               ("certified", _certificate(), "info")):
        v = verdict_from_card(_noop_card(certificate=cert, family=family))
        assert v.forgetting == "unmeasurable" and v.unchanged and v.tone == tone, (family, v.tone)
        assert v.label == "unchanged: nothing measurable to forget"
        assert v.headline.startswith("Returned the original model unchanged, but nothing measurable was left to "
                                     "forget: the original passes the same test (forget set 95.8 % vs 93.8 %")
        short = v.answer("like_retraining").short
        assert short.startswith("Cannot tell: the released weights are the original's") and "Yes" not in short
        assert "nothing changed" in v.distance_note


def test_membership_inference_shows_forgetting_where_accuracy_cannot() -> None:
    """The control picks the test that can: the original passes the accuracy test but its loss attack on 1,000
    forget points is far from the retrained model's (0.62 vs 0.50, tolerance ≈ 0.036), so the release is judged by
    it — a release at 0.51 forgets, a no-op at 0.62 still remembers."""
    from unlearn_core.verdict import mia_tolerance

    assert mia_tolerance(n=1000) == pytest.approx(1.96 * math.sqrt(2) * math.sqrt(2001 / 12e6))
    assert mia_tolerance(n=144) == pytest.approx(0.0945, abs=1e-3)
    mia = {"original": {"loss_auc": 0.62}, "retrained": {"loss_auc": 0.50}, "unlearned": {"loss_auc": 0.51}}
    card = _card(unlearned=_acc(0.95, 0.95), retrained=_acc(0.95, 0.95), original=_acc(0.955, 0.95),
                 certificate=_certificate(), n_forget=1000, n_test=1000)
    forgets = verdict_from_card({**card, "mia": mia})
    assert (forgets.forgetting, forgets.evidence, forgets.tone) == ("forgets", "membership inference", "success")
    assert forgets.headline.startswith("Works: forgets like retraining (loss-attack AUC 0.51 vs 0.5 retrained, "
                                       "original 0.62")
    remembers = verdict_from_card({**card, "mia": {**mia, "unlearned": {"loss_auc": 0.62}}})
    assert (remembers.forgetting, remembers.tone) == ("fails", "warning")
    assert remembers.label == "still remembers (membership inference)"
    # an attack that cannot separate the original either leaves nothing measurable
    blind = verdict_from_card({**card, "mia": {**mia, "original": {"loss_auc": 0.52}}})
    assert blind.forgetting == "unmeasurable" and blind.tone == "info"


def test_the_noise_free_step_closing_the_distance_is_evidence() -> None:
    """Certified Newton's noise-free step at 0.05× the original's distance (the convex preset) shows forgetting
    even where accuracy cannot; the noisy release's distance is said to be the noise's."""
    card = _card(unlearned=_acc(0.955, 0.95), retrained=_acc(0.955, 0.95), original=_acc(0.96, 0.95),
                 certificate=_certificate(sigma=0.01), noiseless=SplitAccuracy(forget=0.955, retain=0.97, test=0.95),
                 approx_error=0.1, dist=30.0)
    card["diagnostics"]["noise_norm"] = 29.9
    v = verdict_from_card(card)
    assert (v.forgetting, v.evidence, v.tone) == ("forgets", "distance", "success")
    assert v.distance_note.startswith("15× the original model's distance (2): dominated by the release noise "
                                      "(‖noise‖ = 29.9)")
    assert "before the noise the estimate is at 0.1 (0.05× the original's)" in v.distance_note


def test_the_share_of_the_distance_a_step_closes_reads_as_a_percent() -> None:
    """A step at 2.7·10⁻⁴× the original's distance closes "> 99.9 %" of it — it read "1e+02 %" on the convex preset."""
    from unlearn_core.verdict import _closed_percent

    assert [_closed_percent(r) for r in (2.7e-4, 0.05, 0.5, 0.9998, 1.0)] == ["> 99.9", "95", "50", "0.02", "0"]


def test_a_method_that_forgot_most_of_a_class_still_remembers_but_is_not_a_no_op() -> None:
    """Fine-tuning took the digit 3 from 95.2 % to 4.8 % (retrained 0 %) while the weights barely moved: it still
    remembers a little — not "does not forget", which is for a release whose outputs did not move either."""
    card = _card(unlearned=_acc(0.048, 0.856), retrained=_acc(0.0, 0.842), original=_acc(0.952, 0.947),
                 family="heuristic", n_forget=144, n_test=360, dist=2.03)
    v = verdict_from_card(card)
    assert (v.label, v.forgetting, v.tone) == ("still remembers the forget set", "fails", "warning")
