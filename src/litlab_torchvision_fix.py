"""Let torchvision import when its compiled ops library cannot load, whatever was imported first.

The registry's torchvision 0.28.0 wheel is a CUDA build. Next to a CPU-only torch its ``_C.so``
fails to load, and ``torchvision/_meta_registrations.py`` then dies registering fake kernels for
``torchvision::nms`` / ``qnms``, whose schemas were never defined. That breaks lightning,
torchmetrics and timm, which all import torchvision. We define just those schemas ourselves
(no kernels: litlab never calls nms) so the import succeeds. When the real library loads, nothing
is defined.

The fix has to run before the first ``import torchvision`` in the process, which in a notebook may
be ``import lightning`` before any litlab import. So the package installs
``litlab_torchvision_fix.pth`` into site-packages (see setup.py), whose one line calls
:func:`install` at interpreter start. That only puts a finder on ``sys.meta_path``: torch is
imported when something first looks for torchvision, never at start (``--help`` stays fast).
This module is top-level and imports nothing outside the standard library at start, so a broken
litlab can never break the interpreter that runs pip. ``import litlab`` installs it too, for a
checkout used through ``PYTHONPATH`` without the ``.pth``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path
from typing import Any

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library: Any = None  # the torch.library.Library kept alive: dropping it unregisters the schemas
_checked = False  # whether the ops library was looked at (once per process is enough)


def _real_ops_load() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None or importlib.util.find_spec("torch") is None:
        return True  # torchvision (or torch) absent: nothing to patch
    import torch

    folder = Path(spec.origin).parent
    candidates = [*folder.glob("_C*.so"), *folder.glob("_C*.pyd")]
    if not candidates:
        return False
    try:
        torch.ops.load_library(str(candidates[0]))
    except (OSError, RuntimeError):
        return False
    return True


def ensure_torchvision_importable() -> bool:
    """Define the missing op schemas if needed. Returns True when the shim was applied."""
    global _library, _checked
    if _checked:
        return _library is not None
    _checked = True
    if _real_ops_load():
        return False
    import torch

    _library = torch.library.Library("torchvision", "FRAGMENT")  # noqa: TOR901 - schema-only library
    for name, schema in _SCHEMAS.items():
        if not torch._C._dispatch_has_kernel(f"torchvision::{name}"):
            try:
                _library.define(schema)
            except RuntimeError:
                pass  # already defined by someone else
    return True


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    """Runs the shim the first time anything looks for torchvision, then steps aside."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torchvision":
            uninstall()  # first: the shim's own find_spec("torchvision") must not come back here
            ensure_torchvision_importable()
        return None  # the ordinary finders import it


_FINDER = _BeforeTorchvision()


def install() -> None:
    """Arrange for the shim to run before torchvision loads (at once if it is loading already)."""
    if _FINDER in sys.meta_path or _checked:
        return
    if "torchvision" in sys.modules:  # imported already: it loaded, or it failed and a retry needs the shim
        ensure_torchvision_importable()
        return
    sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
