"""GAN family: the LightningModule (``module``), its networks (``nets``), drawing images
(``generation``) and ``src/sample.py``'s task (``sampling``)."""

from litlab.models.gan.module import GAN

__all__ = ["GAN"]
