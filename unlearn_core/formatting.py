"""Numbers as people read them: one formatting layer for every page, chart label, table and the HTML report.

Why this exists: tables showed "None" where a bound was infinite, "nan" where a value was not measured,
``1197183.1094`` for a noise scale and ``6.5e+22`` for a destroyed model's loss; a chart's tick read
``1.000000``. Every text a user reads goes through these functions, so that:

* a number has a few significant digits (:func:`sig`), thousands grouped, and a power of ten written as
  ``3.4 × 10⁶`` rather than ``3.4e+06`` once it leaves the range a reader takes in at a glance;
* an infinity says why (:func:`infinite`: ``∞ (λ + λ_min ≤ 0)``);
* a missing value is ``—`` (:data:`MISSING`), never ``None`` or ``nan``;
* accuracies are percentages, times carry their unit, counts are integers.

Pure and UI-free (no Streamlit, no plotly): :mod:`unlearn_core.plots`, :mod:`unlearn_core.verdict`, the
dashboard and the CLI share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "MISSING",
    "count",
    "display_frame",
    "infinite",
    "is_missing",
    "number",
    "percent",
    "points",
    "seconds",
    "sig",
]

#: What a missing value (not measured, not applicable) reads as.
MISSING = "—"

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def is_missing(value: Any) -> bool:
    """``None``, NaN, a non-number (e.g. a pandas ``NA``): nothing to show."""
    if value is None or isinstance(value, bool):
        return value is None
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def _power_of_ten(exponent: int) -> str:
    return "10" + str(exponent).translate(_SUPERSCRIPT)


def sig(value: Any, digits: int = 3, *, cause: str | None = None) -> str:
    """``value`` with ``digits`` significant digits, for reading (not for parsing back).

    * ``0.0441``, ``0.92``, ``12.3``, ``3,382`` (grouped thousands up to 10⁵), ``1.2 × 10⁶``, ``4.4 × 10⁻⁵``;
    * trailing zeros are dropped (``1``, not ``1.00``);
    * ±∞ as ``∞`` / ``−∞``, with ``cause`` when given (``∞ (λ + λ_min ≤ 0)``); missing values as ``—``.
    """
    if is_missing(value):
        return MISSING
    x = float(value)
    if math.isinf(x):
        return infinite(cause) if x > 0 else "−∞"
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    if exponent >= 5 or exponent < -3:
        mantissa = x / 10**exponent
        text = f"{mantissa:.{max(digits - 1, 0)}f}".rstrip("0").rstrip(".")
        if text in ("10", "-10"):  # rounding carried into the next power
            text, exponent = text[:-1], exponent + 1
        return f"{text} × {_power_of_ten(exponent)}".replace("-", "−", 1) if x < 0 else (
            f"{text} × {_power_of_ten(exponent)}")
    decimals = max(digits - 1 - exponent, 0)
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace("-", "−", 1) if x < 0 else text


def number(value: Any, digits: int = 3, *, cause: str | None = None) -> str:
    """An integer as an integer (``144``, ``1,293``), anything else as :func:`sig`."""
    if not is_missing(value) and not isinstance(value, bool):
        x = float(value)
        if math.isfinite(x) and x == int(x) and abs(x) < 1e9:
            return f"{int(x):,}"
    return sig(value, digits, cause=cause)


def infinite(cause: str | None = None) -> str:
    """``∞``, with its cause in brackets when known: an infinity without a reason reads as a bug."""
    return f"∞ ({cause})" if cause else "∞"


def percent(value: Any, decimals: int = 1) -> str:
    """A fraction as a percentage: ``0.9417`` → ``94.2 %``."""
    if is_missing(value) or not math.isfinite(float(value)):
        return MISSING
    return f"{100 * float(value):.{decimals}f} %"


def points(gap: Any, decimals: int = 1, *, signed: bool = True) -> str:
    """An accuracy gap (a fraction) in percentage points: ``-0.016`` → ``−1.6 points``."""
    if is_missing(gap) or not math.isfinite(float(gap)):
        return MISSING
    value = 100 * float(gap)
    text = f"{value:+.{decimals}f}" if signed else f"{abs(value):.{decimals}f}"
    return text.replace("-", "−") + " points"


def seconds(value: Any) -> str:
    """A wall time with its unit: ``0.35 s``, ``12 s``, ``2 min 5 s``, ``1 h 3 min``."""
    if is_missing(value) or not math.isfinite(float(value)):
        return MISSING
    s = float(value)
    if s < 10:
        return f"{s:.2g} s" if s < 1 else f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {round(s % 60)} s"
    return f"{int(s // 3600)} h {round((s % 3600) / 60)} min"


def count(value: Any) -> str:
    """A count (requests, points, steps) as an integer: ``3``, ``1,000``."""
    if is_missing(value):
        return MISSING
    return f"{round(float(value)):,}"


def display_frame(df: Any, formats: Mapping[str, Callable[[Any], str]], *, default: Callable[[Any], str] = sig,
                  keep: tuple[str, ...] = ()) -> Any:
    """A copy of ``df`` whose cells are display text: column ``c`` through ``formats[c]`` (else ``default`` for
    numbers), so that no cell reads ``None``, ``nan`` or ``1197183.1094``. Columns in ``keep`` stay as they are
    (e.g. accuracies a page shows with its own percent format). Text cells are left as text (a missing one
    becomes ``—``); the index is kept."""
    out = df.copy()
    for column in out.columns:
        if column in keep:
            continue
        fmt = formats.get(column)
        values = out[column].tolist()
        if fmt is None:
            numeric = [v for v in values if not is_missing(v)]
            if numeric and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numeric):
                fmt = default
            else:
                out[column] = [MISSING if is_missing(v) and not isinstance(v, str) else v for v in values]
                continue
        out[column] = [fmt(v) for v in values]
    return out
