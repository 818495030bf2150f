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

    from litlab_torchvision_fix import ensure_torchvision_importable

    ensure_torchvision_importable()  # idempotent
    assert torch._C._dispatch_has_kernel("torchvision::nms") or hasattr(torch.ops.torchvision, "nms")


def test_scipy_signal_waits_until_used():
    """torchmetrics imports scipy.signal at every start; litlab defers it, and it still works in full
    (with the hamming alias torchmetrics adds) once something uses it."""
    code = (
        "import sys, litlab, lightning, torchmetrics, litlab.pipeline;"
        "print(type(sys.modules['scipy.signal']).__name__);"
        "from scipy import signal; from scipy.signal import windows; import scipy.stats;"
        "print(type(sys.modules['scipy.signal']).__name__, list(signal.hamming(3)) == list(windows.hamming(3)),"
        " round(float(signal.butter(1, 0.5)[0][0]), 3))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["_DeferredSignal", "module", "True", "0.5"]
