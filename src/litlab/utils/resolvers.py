"""OmegaConf resolvers that pick machine-dependent defaults at config time."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def auto_precision(accelerator: str = "auto") -> str:
    """Fastest precision that does not cost accuracy here: bf16 autocast where the hardware has bf16."""
    import torch

    wants_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if wants_gpu and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_supports_bf16() else "32-true"


def wandb_offline() -> bool:
    """Offline unless the user configured W&B (a key, a mode, or a login in ~/.netrc): never prompt."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE"):
        return False
    netrc = Path.home() / ".netrc"
    return not (netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore"))


def register_resolvers() -> None:
    for name, fn in {"auto_precision": auto_precision, "wandb_offline": wandb_offline}.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
