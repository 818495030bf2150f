"""Let torchvision import when its compiled ops library cannot load.

The registry's torchvision 0.28.0 wheel is a CUDA build. Next to a CPU-only torch its ``_C.so``
fails to load, and ``torchvision/_meta_registrations.py`` then dies registering fake kernels for
``torchvision::nms`` / ``qnms``, whose schemas were never defined. That breaks lightning,
torchmetrics and timm, which all import torchvision. We define just those schemas ourselves
(no kernels: litlab never calls nms) so the import succeeds. When the real library loads, this
module does nothing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library: torch.library.Library | None = None  # kept alive: dropping it unregisters the schemas


def _real_ops_load() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return True  # torchvision absent: nothing to patch
    candidates = list(Path(spec.origin).parent.glob("_C*.so")) + list(
        Path(spec.origin).parent.glob("_C*.pyd")
    )
    if not candidates:
        return False
    try:
        torch.ops.load_library(str(candidates[0]))
    except (OSError, RuntimeError):
        return False
    return True


def ensure_torchvision_importable() -> bool:
    """Define the missing op schemas if needed. Returns True when the shim was applied."""
    global _library
    if _library is not None or _real_ops_load():
        return _library is not None
    _library = torch.library.Library("torchvision", "FRAGMENT")  # noqa: TOR901 - schema-only library
    for name, schema in _SCHEMAS.items():
        if not torch._C._dispatch_has_kernel(f"torchvision::{name}"):
            try:
                _library.define(schema)
            except RuntimeError:
                pass  # already defined by someone else
    return True
