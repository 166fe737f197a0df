"""What an experiment's result shows, in one sentence per page — UI-free (no Streamlit), so that it is unit-tested.

Each experiment page opens its result with the conclusion a newcomer should read in ten seconds (issue 20): how far
the swept parameter moved the bound and the accuracy (Sensitivity), whether Δ stays constant over the requests and
why a request is not certified (Sequential), how time, accuracy and σ change with the forget-set size (Forget-set
size). Numbers are written by :mod:`unlearn_core.formatting`.
"""

from __future__ import annotations

import pandas as pd

from unlearn_core import formatting as fmt


def sequential_causes(df: pd.DataFrame) -> pd.DataFrame:
    """Each request's Δ flag and, for a request that is not certified, why — from its own row: an infinite bound, or
    σ required above the σ fixed at the first request (the chain keeps one σ)."""
    out = df.copy()
    bound = pd.to_numeric(out["delta_bound"], errors="coerce") if "delta_bound" in out else pd.Series(
        index=out.index, dtype=float)
    required = pd.to_numeric(out.get("sigma_required"), errors="coerce")
    used = pd.to_numeric(out.get("sigma_used"), errors="coerce")
    why = []
    for i in out.index:
        if "status" not in out or out.at[i, "status"] != "not certified":
            why.append(None)
        elif pd.isna(bound.get(i)):
            why.append("the bound does not apply at this request")
        elif pd.notna(required.get(i)) and pd.notna(used.get(i)) and required[i] > used[i]:
            why.append(f"σ required {fmt.sig(required[i])} > σ used {fmt.sig(used[i])}, fixed at request 1")
        else:
            why.append("a condition of the bound fails at this request")
    out["why"] = why
    out["delta_bound_infinite"] = bound.isna() & out["status"].notna() if "status" in out else False
    return out


def sequential_story(df: pd.DataFrame) -> str:
    """The chain's conclusion in one sentence: Δ across the requests against the shrinking gradient, and which
    requests are not certified (between certified ones: said so)."""
    by = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in ("grad_norm", "delta_bound") if c in df}
                   ).groupby("step").mean(numeric_only=True).sort_index()
    parts = []
    if "delta_bound" in by and by["delta_bound"].notna().all():
        lo, hi = by["delta_bound"].min(), by["delta_bound"].max()
        parts.append(f"Δ stays between {fmt.sig(lo)} and {fmt.sig(hi)} over {len(by)} requests"
                     + (" — nearly constant, as Zhang et al. claim" if hi <= 1.25 * lo else ""))
    if "grad_norm" in by and by["grad_norm"].notna().all() and len(by) > 1:
        parts.append(f"the retain gradient goes from {fmt.sig(by['grad_norm'].iloc[0])} to "
                     f"{fmt.sig(by['grad_norm'].iloc[-1])}")
    text = ("; ".join(parts) + ".") if parts else ""
    status = df.groupby("step")["status"].agg(lambda v: "not certified" if (v == "not certified").any() else
                                              next((x for x in v if isinstance(x, str)), None)).sort_index()
    bad = [int(k) for k, v in status.items() if v == "not certified"]
    good = [int(k) for k, v in status.items() if isinstance(v, str) and v != "not certified"]
    if bad:
        between = [k for k in bad if any(g < k for g in good) and any(g > k for g in good)]
        text += (f" Request{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} "
                 f"{'are' if len(bad) > 1 else 'is'} not certified")
        text += (" — between certified requests: the chain's σ is fixed at request 1, and a later request whose "
                 "σ required is larger is not covered by it (the table says by how much)." if between else ".")
    return text.strip()


def sensitivity_story(df: pd.DataFrame, swept: str) -> str:
    """The sweep's conclusion in one sentence: how far the bound (or σ) and the test accuracy moved between the
    smallest and the largest value, and where the bound is infinite and why."""
    means = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in ("sigma_required", "delta_bound",
                                                                             "acc_test") if c in df})
    by = means.groupby("value").mean(numeric_only=True).sort_index()
    if by.empty:
        return ""
    lo, hi = by.index[0], by.index[-1]
    parts = []
    for col, name in (("delta_bound", "the bound Δ"), ("sigma_required", "σ required")):
        if col in by and by[col].notna().all():
            parts.append(f"{name} goes from {fmt.sig(by[col].iloc[0])} to {fmt.sig(by[col].iloc[-1])}")
    if "acc_test" in by:
        parts.append(f"the test accuracy from {fmt.percent(by['acc_test'].iloc[0])} to "
                     f"{fmt.percent(by['acc_test'].iloc[-1])}")
    text = f"From {swept} = {fmt.sig(lo)} to {fmt.sig(hi)}: " + ", ".join(parts) + "." if parts else ""
    if "delta_bound_infinite" in df and df["delta_bound_infinite"].map(lambda v: v is True).any():
        causes = sorted({c for c in df.get("why_infinite", []) if isinstance(c, str)})
        text += (" Δ = ∞ at some values — " + "; ".join(causes) + ": no finite noise certifies those releases."
                 if causes else " Δ = ∞ at some values: no finite noise certifies those releases.")
    return text


def forget_size_story(df: pd.DataFrame) -> str:
    """What the sweep shows, per method: how time, test accuracy and σ change from the smallest to the largest
    forget set, against retraining."""
    lines = []
    for method, part in df.groupby("method", sort=False):
        by = part.assign(**{c: pd.to_numeric(part[c], errors="coerce") for c in ("time_s", "acc_test",
                                                                                  "sigma_required") if c in part}
                         ).groupby("n_forget").mean(numeric_only=True).sort_index()
        if len(by) < 2:
            continue
        first, last = by.iloc[0], by.iloc[-1]
        text = (f"**{method}**: {fmt.seconds(first['time_s'])} → {fmt.seconds(last['time_s'])}, test accuracy "
                f"{fmt.percent(first['acc_test'])} → {fmt.percent(last['acc_test'])}")
        if "sigma_required" in by and by["sigma_required"].notna().all():
            flat = by["sigma_required"].max() <= 1.05 * by["sigma_required"].min()
            text += (f", σ required {'≈ ' if by['sigma_required'].nunique() > 1 else ''}"
                     f"{fmt.sig(first['sigma_required'])}"
                     + (" at every size (its bound does not depend on n_u)" if flat
                        else f" → {fmt.sig(last['sigma_required'])}"))
        lines.append(f"- {text} (n_u = {fmt.count(by.index[0])} → {fmt.count(by.index[-1])}).")
    return "\n".join(lines)
