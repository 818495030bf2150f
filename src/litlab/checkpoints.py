"""Reading checkpoints written by litlab's train.py, which carry the run's config (``litlab_config``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from litlab.errors import ConfigError


def load_litlab_checkpoint(
    path: str | Path | None, key: str, not_litlab_hint: str = ""
) -> tuple[Path, dict[str, Any]]:
    """Load a litlab checkpoint named by config key ``key``; every failure is a one-line ConfigError."""
    if not path:
        raise ConfigError(f"{key}=<path to a .ckpt file> is required")
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{key}={path} does not exist; pass the path of a .ckpt file from a litlab train run"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ConfigError(f"{key}={path} cannot be read ({type(error).__name__}: {error})") from error
    if not isinstance(checkpoint, dict) or "litlab_config" not in checkpoint:
        raise ConfigError(
            f"{key}={path} was not written by litlab's train.py (no stored config){not_litlab_hint}"
        )
    return path, checkpoint
