"""Errors that mean "the user must change something": entry points print them as one line."""


class LitlabError(RuntimeError):
    """Base class: its message names the problem and the fix."""


class DataError(LitlabError):
    """Data is missing, truncated or corrupt."""


class ConfigError(LitlabError):
    """A config value is unknown or has the wrong type."""


class NonFiniteLossError(LitlabError):
    """Training diverged."""


class DiskFullError(LitlabError):
    """A write found no space left on its device. ``record`` is where metrics.json went instead, when
    the run had already written its record elsewhere (nothing more to record)."""

    record = None
