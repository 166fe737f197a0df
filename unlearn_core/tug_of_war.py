r"""Tug-of-war (ToW): how close an unlearned model's accuracies are to the retrained model's, on all three splits.

Zhao, Triantafillou et al., "What makes unlearning hard and what to do about it" (NeurIPS 2024; arXiv 2406.01257,
the ToW metric of its evaluation protocol):

.. math:: \mathrm{ToW} = \big(1 - |\mathrm{FA}_u - \mathrm{FA}_r|\big)\,\big(1 - |\mathrm{RA}_u - \mathrm{RA}_r|\big)\,
          \big(1 - |\mathrm{TA}_u - \mathrm{TA}_r|\big)

with FA, RA, TA the accuracies (fractions in [0, 1]) on the forget, retain and test sets of the unlearned (u) and
the retrained (r) model. It is 1 when every accuracy matches retraining and falls with each gap — in *either*
direction, so forgetting "too well" (a forget accuracy below the retrained one) costs as much as remembering; it
trades forgetting quality against utility in one number (the "tug of war" between the two).

Read it against its controls: the original model's ToW (doing nothing) and a second retraining's (the seed-to-seed
floor), never against 1 alone.
"""

from __future__ import annotations

import math

from unlearn_core.errors import ConfigError


def _accuracy(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise ConfigError(f"{name}={value!r} is not valid: an accuracy is a fraction in [0, 1]")
    return v


def tug_of_war(*, forget_unlearned: float, retain_unlearned: float, test_unlearned: float, forget_retrained: float,
               retain_retrained: float, test_retrained: float) -> float:
    """ToW of Zhao et al. (NeurIPS 2024) from six accuracies in [0, 1] (see the module docstring)."""
    fa_u, ra_u, ta_u = (_accuracy(n, v) for n, v in (("forget_unlearned", forget_unlearned),
                                                      ("retain_unlearned", retain_unlearned),
                                                      ("test_unlearned", test_unlearned)))
    fa_r, ra_r, ta_r = (_accuracy(n, v) for n, v in (("forget_retrained", forget_retrained),
                                                      ("retain_retrained", retain_retrained),
                                                      ("test_retrained", test_retrained)))
    return (1.0 - abs(fa_u - fa_r)) * (1.0 - abs(ra_u - ra_r)) * (1.0 - abs(ta_u - ta_r))


def tug_of_war_from_rows(unlearned: dict, retrained: dict) -> float:
    """ToW from two rows with ``acc_forget``, ``acc_retain``, ``acc_test`` (e.g. a compare row and the retrained
    row of the same seed)."""
    return tug_of_war(forget_unlearned=unlearned["acc_forget"], retain_unlearned=unlearned["acc_retain"],
                      test_unlearned=unlearned["acc_test"], forget_retrained=retrained["acc_forget"],
                      retain_retrained=retrained["acc_retain"], test_retrained=retrained["acc_test"])
