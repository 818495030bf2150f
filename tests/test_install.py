"""The stack imports cleanly on this machine (CPU-only torch beside the CUDA torchvision wheel)."""

from __future__ import annotations

import subprocess
import sys


def test_stack_imports_after_litlab_and_wandb_stays_lazy():
    code = (
        "import sys, litlab, torchvision, lightning, torchmetrics, hydra;"
        "import litlab.pipeline, litlab.models.cnn, litlab.models.mlp, litlab.data.cifar10, litlab.data.mnist;"
        "print('wandb' in sys.modules, 'timm' in sys.modules); import timm"  # timm itself imports wandb
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False False"


def test_shim_defines_only_missing_schemas():
    import torch

    from litlab._torchvision_compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # idempotent
    assert torch._C._dispatch_has_kernel("torchvision::nms") or hasattr(torch.ops.torchvision, "nms")
