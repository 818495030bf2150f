"""litlab: a Lightning + Hydra research template.

Importing the package first makes torchvision importable on CPU-only torch (see
``_torchvision_compat``) and registers litlab's OmegaConf resolvers.
"""

from litlab._torchvision_compat import ensure_torchvision_importable

ensure_torchvision_importable()

from litlab.utils.resolvers import register_resolvers  # noqa: E402

register_resolvers()

__all__ = ["ensure_torchvision_importable", "register_resolvers"]
