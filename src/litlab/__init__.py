"""litlab: a Lightning + Hydra research template.

Importing the package first makes torchvision importable on CPU-only torch (see
``_torchvision_compat``), defers ``scipy.signal`` (``_deferred_scipy``) and registers litlab's
OmegaConf resolvers.
"""

from litlab._deferred_scipy import defer_scipy_signal
from litlab._torchvision_compat import ensure_torchvision_importable

ensure_torchvision_importable()
defer_scipy_signal()  # before torchmetrics imports it at every start (see _deferred_scipy)

from litlab.utils.resolvers import register_resolvers  # noqa: E402

register_resolvers()

__all__ = ["ensure_torchvision_importable", "register_resolvers"]
