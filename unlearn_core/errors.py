"""Errors the engine raises for bad user input.

A :class:`ConfigError` carries one line that names the offending value and what is allowed; the CLI prints it
and exits with status 2, the dashboard shows it with ``st.error``. Anything else is a bug and keeps its
traceback.
"""


class ConfigError(ValueError):
    """Bad user input: an unknown name, a value out of range, missing data. The message is one line."""


class DataUnavailableError(ConfigError):
    """A dataset's files are missing and downloading is not allowed (or impossible)."""


class DivergenceError(RuntimeError):
    """An iterative solver (LiSSA, CG, power iteration) blew up; the message says what to change."""


#: Longest user value quoted whole in a message. A forget spec of 10,000 indices is 49,000 characters; echoing
#: it makes the one-line error unreadable (and a terminal or a Streamlit alert unusable).
MAX_QUOTED_CHARS = 60


def abbreviate(value: object, *, limit: int = MAX_QUOTED_CHARS) -> str:
    """``repr(value)`` for a one-line message; a longer one is cut to ``limit`` characters and its length noted.

    >>> abbreviate("indices:" + ",".join(map(str, range(10_000))))
    "'indices:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,…' (48,897 characters)"
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    raw = str(value)
    return f"{text[: limit - 1]}…{text[-1] if isinstance(value, str) else ''} ({len(raw):,} characters)"
