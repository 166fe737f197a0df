"""The one-sentence conclusions of the experiment pages (dashboard/stories.py) on hand-made rows (issue 20)."""

from __future__ import annotations

import pandas as pd

from dashboard import stories


def _requests(status: list[str], bound: list[float | None], required: list[float | None]) -> pd.DataFrame:
    return pd.DataFrame({"seed": 0, "step": [1, 2, 3], "grad_norm": [0.149, 0.097, 0.091], "delta_bound": bound,
                         "sigma_required": required, "sigma_used": [3382.0] * 3, "status": status})


def test_sequential_says_delta_stays_constant_while_the_gradient_shrinks() -> None:
    df = stories.sequential_causes(_requests(["certified under assumptions"] * 3, [906.6, 882.2, 872.1],
                                             [3382.0, 3291.0, 3253.4]))
    text = stories.sequential_story(df)
    assert text == ("Δ stays between 872 and 907 over 3 requests — nearly constant, as Zhang et al. claim; the "
                    "retain gradient goes from 0.149 to 0.091.")
    assert df["why"].isna().all() and not df["delta_bound_infinite"].any()


def test_a_request_not_certified_between_certified_ones_gets_a_comment() -> None:
    """Finding 5 (the vacuous preset): request 2 was "not certified" between two certified ones with no word. Its σ
    required is above the σ the chain fixed at request 1; the page says so, with the numbers."""
    df = stories.sequential_causes(_requests(["certified", "not certified", "certified"], [906.5, 950.0, 872.1],
                                             [3382.0, 3545.0, 3253.4]))
    assert df["why"].tolist()[1] == "σ required 3,545 > σ used 3,382, fixed at request 1"
    text = stories.sequential_story(df)
    assert "Request 2 is not certified — between certified requests: the chain's σ is fixed at request 1" in text
    infinite = stories.sequential_causes(_requests(["certified", "not certified", "certified"], [906.5, None, 872.1],
                                                   [3382.0, None, 3253.4]))
    assert infinite["why"].tolist()[1] == "the bound does not apply at this request"
    assert infinite["delta_bound_infinite"].tolist() == [False, True, False]


def test_sensitivity_states_how_far_the_sweep_moved_the_noise_and_the_accuracy() -> None:
    df = pd.DataFrame({"seed": 0, "value": [0.01, 0.1, 1.0], "sigma_required": [3.3, 0.37, 0.044],
                       "acc_test": [0.10, 0.93, 0.93], "delta_bound": [None, None, None],
                       "delta_bound_infinite": [None, None, None]})
    text = stories.sensitivity_story(df, "epsilon")
    assert text == ("From epsilon = 0.01 to 1: σ required goes from 3.3 to 0.044, the test accuracy from 10.0 % to "
                    "93.0 %.")
    unbounded = pd.DataFrame({"seed": 0, "value": [0.01, 1.0], "acc_test": [0.1, 0.1], "delta_bound": [None, None],
                              "delta_bound_infinite": [True, True],
                              "why_infinite": ["exact term: λ + λ_min > 0 fails", "LiSSA term: ζ_min > 0 fails"]})
    text = stories.sensitivity_story(unbounded, "lam")
    assert "Δ = ∞ at some values — LiSSA term: ζ_min > 0 fails; exact term: λ + λ_min > 0 fails" in text


def test_forget_size_says_when_sigma_does_not_depend_on_the_forget_set() -> None:
    df = pd.DataFrame({"seed": 0, "method": ["noisy_finetune"] * 3, "n_forget": [10, 100, 300],
                       "time_s": [0.67, 0.41, 0.35], "acc_test": [0.939, 0.931, 0.914],
                       "sigma_required": [0.04405, 0.04405, 0.04405]})
    assert stories.forget_size_story(df) == (
        "- **noisy_finetune**: 0.67 s → 0.35 s, test accuracy 93.9 % → 91.4 %, σ required 0.044 at every size (its "
        "bound does not depend on n_u) (n_u = 10 → 300).")
