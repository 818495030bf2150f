"""OmegaConf resolvers that pick machine-dependent defaults at config time."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from omegaconf import OmegaConf


@functools.cache  # the hardware does not change within a process; the RNN asks on every step
def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cuda_runs_bf16_natively() -> bool:
    """bf16 tensor cores: compute capability 8.0 (Ampere) and newer. Older GPUs (V100, T4) emulate
    bf16, slower than fp16, which torch.cuda.is_bf16_supported() still reports as supported."""
    import torch

    return torch.cuda.get_device_capability() >= (8, 0)


def auto_precision(accelerator: str = "auto") -> str:
    """Fastest precision that does not cost accuracy here: bf16 autocast where the hardware runs bf16
    natively; on older CUDA GPUs fp16 autocast (Lightning adds the loss scaler); else fp32."""
    import torch

    wants_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if wants_gpu and torch.cuda.is_available():
        return "bf16-mixed" if cuda_runs_bf16_natively() else "16-mixed"
    if accelerator in ("cpu", "auto"):
        return "bf16-mixed" if cpu_supports_bf16() else "32-true"
    return "32-true"  # another accelerator (mps, ...): no autocast we have measured


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
