"""Deadlines for tests that wait on real work (a subprocess, a server, a browser, a background job).

A test must not fail because the machine is slow: CI runs on shared machines, and the suite failed twice on a
loaded 2-core machine with fixed 120 s and 180 s deadlines that a quiet one met easily. Every such deadline is
written as ``scaled(seconds)``, the deadline on a quiet 2-core machine; ``UNLEARN_TEST_TIMEOUT_SCALE`` multiplies
it (``.ci/run`` sets 3). Assertions about *speed* compare ratios measured side by side instead.
"""

from __future__ import annotations

import os

ENV = "UNLEARN_TEST_TIMEOUT_SCALE"


def scale() -> float:
    """The factor from ``$UNLEARN_TEST_TIMEOUT_SCALE`` (default 1; a malformed or non-positive value is an error)."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{ENV}={text!r} is not a number") from None
    if not value > 0:
        raise ValueError(f"{ENV}={text!r} must be > 0")
    return value


def scaled(seconds: float) -> float:
    """``seconds`` × the factor: a deadline in seconds."""
    return float(seconds) * scale()


def scaled_ms(seconds: float) -> int:
    """The same deadline in milliseconds (Playwright's unit)."""
    return int(scaled(seconds) * 1000)


def poll_app(at, done, *, timeout: float, interval: float = 0.3, scale_deadline: bool = True) -> None:
    """Rerun the Streamlit AppTest ``at`` every ``interval`` seconds until ``done(at)`` (a background job finished),
    failing on the first exception the page shows, or when ``timeout`` seconds (``scaled`` unless
    ``scale_deadline=False``) have passed. The AppTest modules bind their own default deadline with
    ``functools.partial``."""
    import time

    deadline = time.time() + (scaled(timeout) if scale_deadline else float(timeout))
    while time.time() < deadline:
        assert not at.exception, at.exception
        if done(at):
            return
        time.sleep(interval)
        at.run()
    raise AssertionError("the job did not finish in time")
