"""Errors that mean "the user must change something": entry points print them as one line."""

import math
import re


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


# Lightning's error for a fraction of the batches that rounds down to none (data_connector.py)
_NO_BATCH_LEFT = re.compile(
    r"check (?P<limit>\S+) of the `(?P<loader>\w+)` but \S+ \* (?P<count>\d+) < 1.*"
    r"`(?P<key>limit_\w+_batches)=(?P<least>[\d.e-]+)`"
)


def from_lightning_misuse(error: Exception) -> ConfigError:
    """Lightning's MisconfigurationException as a one-line ConfigError in config terms."""
    message = str(error)
    if found := _NO_BATCH_LEFT.search(message):
        least = math.ceil(float(found["least"]) * 1000) / 1000  # rounded up: it must still select a batch
        return ConfigError(
            f"trainer.{found['key']}={found['limit']} selects no batch of the {found['count']} in the "
            f"{found['loader']}; use trainer.{found['key']}={least:g} or more, or a whole number of "
            f"batches (trainer.{found['key']}=1)"
        )
    return ConfigError(" ".join(message.split()))
