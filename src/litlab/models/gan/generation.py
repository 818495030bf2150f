"""Drawing images from a trained GAN: noise (with truncation), BatchNorm statistics for the weight
average, batched generation and the per-epoch sample grids. A mixin of ``GAN``, which provides
``sampler``, ``draw``, ``balanced_labels`` and the hyperparameters."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from litlab.errors import ConfigError
from litlab.utils.images import make_grid, save_grid, to_uint8


class Generation:
    @torch.no_grad()
    def prepare_sampler(self, batches: int = 10, batch_size: int = 1000) -> torch.nn.Module:
        """The sampler, ready for eval mode. The weight average gets its own BatchNorm statistics,
        measured on its own outputs ("standing statistics", as in BigGAN): the live generator's
        statistics do not describe the averaged weights' activations. Fixed noise, so this neither
        varies between calls nor draws from the training RNG."""
        sampler = self.sampler
        norms = [m for m in sampler.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if self.generator_ema is None or not norms:
            return sampler
        momenta = [m.momentum for m in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a plain average over the batches below
        rng = torch.Generator(device=self.device).manual_seed(1)
        sampler.train()
        for _ in range(batches):
            noise = torch.randn(batch_size, self.hparams.latent_dim, device=self.device, generator=rng)
            self.draw(sampler, noise, None)
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        return sampler

    def noise(self, n: int, truncation: float | None = None) -> torch.Tensor:
        """Standard normal noise; with ``truncation`` t, a normal truncated to [-t, t] (BigGAN's
        truncation trick: fewer unlikely latents, so cleaner samples at some cost in variety)."""
        if truncation is None:
            return torch.randn(n, self.hparams.latent_dim, device=self.device)
        if truncation <= 0:
            raise ConfigError(f"truncation={truncation} must be > 0 (null: no truncation)")
        noise = torch.empty(n, self.hparams.latent_dim, device=self.device)
        return torch.nn.init.trunc_normal_(noise, a=-truncation, b=truncation)

    @torch.no_grad()
    def generate(
        self,
        n: int,
        batch_size: int = 1000,
        labels: torch.Tensor | None = None,
        truncation: float | None = None,
    ) -> torch.Tensor:
        """``n`` uint8 images from fresh noise (truncated: see ``noise``), with the sampler in eval mode
        (running BN statistics). A conditional GAN draws ``labels``, or every class equally often."""
        sampler = self.prepare_sampler()
        was_training = sampler.training
        sampler.eval()
        if self.hparams.conditional and labels is None:
            labels = self.balanced_labels(n)
        images = []
        for i in range(0, n, batch_size):
            chunk = None if labels is None else labels[i : i + batch_size].to(self.device)
            images.append(to_uint8(self.draw(sampler, self.noise(min(batch_size, n - i), truncation), chunk)))
        sampler.train(was_training)
        return torch.cat(images)

    @rank_zero_only
    def render_samples(self, name: str) -> Path:
        """Fixed noise -> PNG grid under <run dir>/samples/, and to TensorBoard / W&B when they log."""
        sampler = self.prepare_sampler()
        was_training = sampler.training
        sampler.eval()
        with torch.no_grad():
            labels = self.fixed_labels if self.hparams.conditional else None
            nrow = self.hparams.num_classes if self.hparams.conditional else None
            grid = make_grid(to_uint8(self.draw(sampler, self.fixed_noise, labels)), nrow=nrow)
        sampler.train(was_training)
        path = save_grid(grid, Path(self.trainer.default_root_dir) / "samples" / f"{name}.png")
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", grid, self.global_step)
            elif isinstance(logger, WandbLogger):
                logger.log_image("samples", [grid.permute(1, 2, 0).numpy()], step=self.global_step)
        return path
