"""Defer ``scipy.signal`` until something uses it.

torchmetrics, which every Lightning process imports, runs ``import scipy.signal`` whenever SciPy is
installed, only to add the ``hamming`` alias that SciPy 1.13 removed. That import is a large share
of each start (``python -X importtime``: about a second on the 2-core benchmark CPU), paid by every
train.py run and every sweep job although nothing in a run uses it. SciPy is here for the sweep
statistics. This stands a module in for ``scipy.signal`` that has ``hamming`` and loads the real
module on the first other attribute; ``import litlab`` installs it first, as it does the
torchvision fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any


def _real() -> types.ModuleType:
    if isinstance(sys.modules.get("scipy.signal"), _DeferredSignal):
        del sys.modules["scipy.signal"]  # let the real import run, once
    signal = importlib.import_module("scipy.signal")
    if not hasattr(signal, "hamming"):  # what torchmetrics would have added
        signal.hamming = signal.windows.hamming
    return signal


class _DeferredSignal(types.ModuleType):
    @staticmethod
    def hamming(*args: Any, **kwargs: Any) -> Any:
        return _real().windows.hamming(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # only for names the stand-in lacks
        return getattr(_real(), name)


def defer_scipy_signal() -> None:
    if "scipy.signal" in sys.modules or importlib.util.find_spec("scipy") is None:
        return
    import scipy

    stand_in = _DeferredSignal("scipy.signal")
    # inspect.getmodule reads every module's __file__ (torch does, registering ops): answer without loading
    stand_in.__file__ = importlib.util.find_spec("scipy.signal").origin
    sys.modules["scipy.signal"] = stand_in
    scipy.signal = stand_in  # the real import replaces both
