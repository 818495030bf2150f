"""litlab: a Lightning + Hydra research template.

Importing the package is cheap (no torch): it makes torchvision importable on CPU-only torch
before anything loads it (``litlab_torchvision_fix``, also run at interpreter start by the .pth the
package installs), defers ``scipy.signal`` (``_deferred_scipy``), silences the warnings nobody can
act on (``quiet``) and registers litlab's OmegaConf resolvers, which import torch only when used.
"""

import litlab_torchvision_fix
from litlab._deferred_scipy import defer_scipy_signal
from litlab.quiet import silence_unactionable_warnings

litlab_torchvision_fix.install()
defer_scipy_signal()  # before torchmetrics imports it at every start (see _deferred_scipy)
silence_unactionable_warnings()

from litlab.utils.resolvers import register_resolvers  # noqa: E402

register_resolvers()

__all__ = ["register_resolvers"]
