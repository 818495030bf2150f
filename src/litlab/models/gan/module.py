"""GAN family: one LightningModule with manual optimisation for the dense GAN and the DCGAN.

Not a ClassificationModule: there is no label to predict. The generator and the discriminator are
stepped in turn on every batch (``d_steps`` then ``g_steps``), each by its own optimiser. Both
networks, both optimisers and the fixed noise batch live in the checkpoint, so a run resumes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.optim import Optimizer

from litlab.errors import ConfigError, NonFiniteLossError
from litlab.models.gan.generation import Generation
from litlab.models.gan.nets import build_pair

LOGGED = ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake")


class GAN(Generation, L.LightningModule):
    # the discriminator's backward leaves G without gradients and the generator's step leaves D's
    # unused: DDP must look for unused parameters (``litlab.distributed.ddp_strategy``)
    ddp_find_unused_parameters = True

    def __init__(
        self,
        num_classes: int,
        input_shape: Sequence[int],
        optimizer: Callable[..., Optimizer],
        d_optimizer: Callable[..., Optimizer] | None = None,
        arch: str = "dense",
        latent_dim: int = 100,
        width: int = 64,
        d_steps: int = 1,
        g_steps: int = 1,
        label_smoothing: float = 0.0,
        gradient_clip_val: float | None = None,
        num_samples: int = 64,
        sample_every_n_epochs: int = 1,
        g_ema: float = 0.0,
        channels_last: bool = False,
        conditional: bool = False,
        r1_gamma: float = 0.0,
        r1_every: int = 1,
    ) -> None:
        """``optimizer`` steps the generator, and the discriminator too unless ``d_optimizer`` is given.
        ``label_smoothing`` is one-sided: the discriminator's real target becomes 1 - label_smoothing.
        ``g_ema`` > 0 keeps an exponential moving average of the generator's weights (decay ``g_ema``,
        updated after every generator step); samples, grids and scores then come from the average,
        which smooths out the oscillation of adversarial training. ``channels_last`` is the fast memory
        layout for convolutions under bf16 autocast on CPUs with bf16 (and on GPUs). ``conditional``
        makes the pair class-conditional: G draws the class it is given, D judges image and class
        together (a projection discriminator); fakes are drawn with the real batch's labels.
        ``r1_gamma`` > 0 adds the R1 penalty (Mescheder et al. 2018), gamma/2 * E||grad_x D(x)||^2 on real
        images, to the discriminator's loss: it stops D from growing steep around the data, which
        makes training converge instead of circling. ``r1_every`` = k applies it on every k-th batch
        only, weighted by k ("lazy regularisation", StyleGAN2): nearly the same effect for 1/k of the
        cost of its double backward."""
        super().__init__()
        if d_steps < 1 or g_steps < 1 or not 0 <= label_smoothing < 1 or sample_every_n_epochs < 1:
            raise ConfigError(
                "model.d_steps, model.g_steps and model.sample_every_n_epochs must be >= 1, "
                "model.label_smoothing in [0, 1)"
            )
        if r1_gamma < 0 or r1_every < 1:
            raise ConfigError(
                f"model.r1_gamma={r1_gamma} must be >= 0 (0 turns the penalty off), model.r1_every={r1_every} >= 1"
            )
        if not 0 <= g_ema < 1:
            raise ConfigError(f"model.g_ema={g_ema} must be in [0, 1) (0 turns the average off)")
        self.save_hyperparameters(logger=False, ignore=["optimizer", "d_optimizer"])
        self.automatic_optimization = False
        self.optimizer_factory, self.d_optimizer_factory = optimizer, d_optimizer or optimizer
        self.input_shape = tuple(input_shape)
        classes = num_classes if conditional else 0
        self.generator, self.discriminator = build_pair(arch, latent_dim, self.input_shape, width, classes)
        # a submodule, so it is checkpointed and moved with the model; never given to an optimiser
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if g_ema else None
        # the same noise every time, so grids from successive epochs show the same "digits" evolving
        noise = torch.randn(num_samples, latent_dim, generator=torch.Generator().manual_seed(0))
        self.register_buffer("fixed_noise", noise)
        if conditional:  # class i % num_classes in slot i: with num_classes per row, a column per class
            self.register_buffer("fixed_labels", torch.arange(num_samples) % num_classes)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] from latent vectors (the training generator)."""
        return self.draw(self.generator, noise, labels)

    def draw(
        self, generator: torch.nn.Module, noise: torch.Tensor, labels: torch.Tensor | None
    ) -> torch.Tensor:
        """``generator`` on ``noise``, told the classes when the GAN is conditional (balanced if None)."""
        if not self.hparams.conditional:
            return generator(noise)
        if labels is None:
            labels = self.balanced_labels(len(noise))
        return generator(noise, labels)

    def judge(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The discriminator's logits, given the classes when the GAN is conditional."""
        if self.hparams.conditional:
            return self.discriminator(images, labels)
        return self.discriminator(images)

    def balanced_labels(self, n: int) -> torch.Tensor:
        return torch.arange(n, device=self.device) % self.hparams.num_classes

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator that samples, grids and scores use: the weight average when there is one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = self.hparams.g_ema
        for average, live in zip(self.generator_ema.parameters(), self.generator.parameters(), strict=True):
            average.lerp_(live, 1.0 - decay)

    def setup(self, stage: str) -> None:
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)

    # --- losses ------------------------------------------------------------------------------
    def discriminator_loss(
        self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None, r1: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``r1``: add the R1 penalty, from the same forward pass over the real images as the loss."""
        if r1:
            real = real.detach().requires_grad_(True)
        real_logits = self.judge(real, labels).float()
        fake_logits = self.judge(fake, labels).float()
        real_target = torch.full_like(real_logits, 1.0 - self.hparams.label_smoothing)
        loss = 0.5 * (
            F.binary_cross_entropy_with_logits(real_logits, real_target)
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        )
        if r1:
            loss = loss + self.r1_penalty(real, real_logits)
        return loss, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()

    def r1_penalty(self, real: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        """gamma/2 * the mean squared norm of D's gradient at the real images (kept in the graph),
        times ``r1_every`` (lazy: applied on 1 batch in r1_every). ``real`` must require grad and
        ``real_logits`` be D's output on it."""
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        weight = 0.5 * self.hparams.r1_gamma * self.hparams.r1_every
        return weight * grad.float().pow(2).flatten(1).sum(1).mean()

    def generator_loss(self, fake: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.judge(fake, labels).float()
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    # --- training ----------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> None:
        real, labels = batch[0], batch[1] if self.hparams.conditional else None
        if self.hparams.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        g_opt, d_opt = self.optimizers()
        d_steps = self.hparams.d_steps
        r1 = bool(self.hparams.r1_gamma) and batch_idx % self.hparams.r1_every == 0
        for d_step in range(d_steps):
            # the last discriminator step's fakes keep their graph, so the first generator step
            # reuses them (as PyTorch's DCGAN example does) instead of running G forward again
            with torch.set_grad_enabled(d_step == d_steps - 1):
                fake = self(self.noise(len(real)), labels)
            d_loss, d_real, d_fake = self.discriminator_loss(real, fake.detach(), labels, r1=r1)
            self.step(d_opt, d_loss, "discriminator")
        for g_step in range(self.hparams.g_steps):
            if g_step:
                fake = self(self.noise(len(real)), labels)
            g_loss = self.generator_loss(fake, labels)
            self.step(g_opt, g_loss, "generator")
            if self.generator_ema is not None:
                self.update_ema()
        for name, value in zip(LOGGED, (d_loss, g_loss, d_real, d_fake), strict=True):
            self.log(name, value, on_step=False, on_epoch=True, prog_bar=name.endswith("loss"))

    def step(self, optimizer: Any, loss: torch.Tensor, network: str) -> None:
        """One manual update of one network; the other network's parameters get no gradients."""
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"{network} loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}: "
                "training diverged. Lower model.optimizer.lr, set model.gradient_clip_val=1.0 or "
                "model.label_smoothing=0.1; checkpoints saved before this point are kept"
            )
        self.toggle_optimizer(optimizer)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.hparams.gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val=self.hparams.gradient_clip_val)
        optimizer.step()
        self.untoggle_optimizer(optimizer)

    def configure_optimizers(self) -> list[Optimizer]:
        return [
            self.optimizer_factory(params=self.generator.parameters()),
            self.d_optimizer_factory(params=self.discriminator.parameters()),
        ]

    # --- testing: how well the discriminator tells held-out real images from fakes ------------
    def test_step(self, batch: Any, batch_idx: int) -> None:
        real, labels = batch[0], batch[1] if self.hparams.conditional else None
        fake = self(self.noise(len(real)), labels)
        d_loss, d_real, d_fake = self.discriminator_loss(real, fake, labels)
        self.log("test/d_loss", d_loss, on_epoch=True)
        self.log("test/g_loss", self.generator_loss(fake, labels), on_epoch=True)
        self.log("test/d_real", d_real, on_epoch=True)
        self.log("test/d_fake", d_fake, on_epoch=True)

    # --- sample grids ------------------------------------------------------------------------
    def on_train_epoch_end(self) -> None:
        if (self.current_epoch + 1) % self.hparams.sample_every_n_epochs == 0:
            self.render_samples(f"epoch_{self.current_epoch:03d}")

    def on_train_end(self) -> None:
        self.render_samples("last")

    # --- settings that manual optimisation cannot honour -------------------------------------
    def configure_callbacks(self) -> list[L.Callback]:
        """Checked here because Lightning calls this before it validates the trainer's settings.

        The trainer's gradient clipping and accumulation do not apply to manual optimisation, and a
        GAN logs no validation metric: a callback that monitors one is an error naming the fix
        (``model=gan|dcgan`` selects ``callbacks=gan``; an explicit ``callbacks=default`` does not)."""
        trainer = self.trainer
        if trainer.gradient_clip_val:
            raise ConfigError(
                f"trainer.gradient_clip_val={trainer.gradient_clip_val} does not apply to a GAN (manual "
                f"optimisation); use model.gradient_clip_val={trainer.gradient_clip_val} instead"
            )
        if trainer.accumulate_grad_batches != 1:
            raise ConfigError(
                "trainer.accumulate_grad_batches does not apply to a GAN (manual optimisation); "
                "raise data.batch_size instead"
            )
        for callback in trainer.callbacks:
            monitor = getattr(callback, "monitor", None)
            if monitor is not None and monitor not in LOGGED:
                raise ConfigError(
                    f"{type(callback).__name__} monitors {monitor!r}, which a GAN does not log: use "
                    f"callbacks=gan (a checkpoint every epoch), or monitor one of {list(LOGGED)}"
                )
        return []
