"""Freezing and gradual unfreezing of a transfer backbone, through Lightning's ``BaseFinetuning``.

``BaseFinetuning`` records the parameter groups it adds, so a resumed run gets them back. Two
things it leaves out are done here: a frozen BatchNorm keeps its running statistics frozen (it
stays in eval mode, see ``TimmClassifier.train``), and a per-step LR scheduler learns about the
new groups, so they follow the same schedule as the head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import lightning as L
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from litlab.errors import ConfigError

if TYPE_CHECKING:
    from litlab.models.transfer.module import TimmClassifier


def backbone_blocks(net: nn.Module, head: tuple[str, ...]) -> list[list[str]]:
    """Backbone parameter names in blocks from input to output (timm's coarse layer groups if it has them)."""
    names = [n for n, _ in net.named_parameters() if not n.startswith(head)]
    grouped: dict[object, list[str]] = {}
    if hasattr(net, "group_matcher"):
        from timm.models import group_parameters

        try:
            layer_of = group_parameters(net, net.group_matcher(coarse=True), reverse=True)
            for name in names:
                grouped.setdefault(layer_of[name], []).append(name)
            return [grouped[k] for k in sorted(grouped)]
        except Exception:  # a model without a usable matcher falls back to its top-level children
            grouped.clear()
    for name in names:
        grouped.setdefault(name.split(".")[0], []).append(name)
    return list(grouped.values())


def milestone_chunks(blocks: list[list[str]], milestones: int) -> list[list[str]]:
    """Split the blocks into ``milestones`` contiguous chunks, the one nearest the head first."""
    if milestones > len(blocks):
        raise ConfigError(
            f"model.unfreeze_at has {milestones} milestones but the backbone has only {len(blocks)} blocks"
        )
    top_first = blocks[::-1]
    size, extra = divmod(len(top_first), milestones)
    chunks, start = [], 0
    for i in range(milestones):
        stop = start + size + (1 if i < extra else 0)
        chunks.append([name for block in top_first[start:stop] for name in block])
        start = stop
    return chunks


def sync_schedulers(trainer: L.Trainer, optimizer: Optimizer) -> None:
    """Make per-step schedulers drive param groups added after they were built."""
    groups = optimizer.param_groups
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if scheduler.optimizer is not optimizer or not hasattr(scheduler, "base_lrs"):
            continue
        for group in groups:
            group.setdefault("initial_lr", group["lr"])
        scheduler.base_lrs = [group["initial_lr"] for group in groups]
        if isinstance(scheduler, LambdaLR):
            scheduler.lr_lambdas += [scheduler.lr_lambdas[0]] * (len(groups) - len(scheduler.lr_lambdas))
            for group, base, factor in zip(groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
                group["lr"] = base * factor(scheduler.last_epoch)


class GradualUnfreezing(BaseFinetuning):
    """Start as a linear probe; at each milestone epoch unfreeze the next chunk of the backbone
    (nearest the head first) and add it to the optimiser as a new group at the backbone lr."""

    def __init__(self, milestones: Sequence[int]) -> None:
        super().__init__()
        self.milestones = list(milestones)

    def freeze_before_training(self, pl_module: TimmClassifier) -> None:
        pl_module.freeze_backbone()

    def on_fit_start(self, trainer: L.Trainer, pl_module: TimmClassifier) -> None:
        super().on_fit_start(trainer, pl_module)  # on resume: restores the groups added before
        for optimizer in trainer.optimizers:
            restored = {id(p) for group in optimizer.param_groups for p in group["params"]}
            for param in pl_module.parameters():
                if id(param) in restored:
                    param.requires_grad_(True)
            sync_schedulers(trainer, optimizer)
        pl_module.train(pl_module.training)

    def finetune_function(self, pl_module: TimmClassifier, epoch: int, optimizer: Optimizer) -> None:
        chunks = milestone_chunks(
            backbone_blocks(pl_module.net, pl_module.head_prefixes), len(self.milestones)
        )
        added = False
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        for milestone, names in zip(self.milestones, chunks, strict=True):
            if epoch < milestone:
                continue
            params = [pl_module.net.get_parameter(name) for name in names]
            for param in params:
                param.requires_grad_(True)
            new = [p for p in params if id(p) not in in_optimizer]
            if new:
                head_lr = optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
                optimizer.add_param_group(
                    {"params": new, "lr": head_lr * pl_module.hparams.backbone_lr_factor}
                )
                added = True
        if added:
            sync_schedulers(pl_module.trainer, optimizer)
            pl_module.train(pl_module.training)  # unfrozen BatchNorms resume updating their statistics


def freeze_batchnorm_of_frozen(net: nn.Module) -> None:
    """A BatchNorm whose affine parameters are frozen also keeps its running statistics (eval mode)."""
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()
