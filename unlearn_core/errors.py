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
