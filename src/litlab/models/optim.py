"""SGDW: Nesterov SGD whose weight decay does not depend on the learning rate's value.

``torch.optim.SGD(weight_decay=wd)`` shrinks each weight by ``lr * wd`` per step, so retuning the lr
silently retunes the regularisation. SGDW takes ``weight_decay`` as the shrink per step itself (at
the schedule's peak; it follows the schedule's factor) and hands SGD ``weight_decay / lr`` per param
group, as airbench does. Like SGD's, the decay goes through the momentum buffer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class SGDW(torch.optim.SGD):
    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        nesterov: bool = True,
        dampening: float = 0.0,
    ) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov)
        self.defaults["decay_per_step"] = weight_decay  # groups added later get it too
        for group in self.param_groups:
            group.setdefault("decay_per_step", weight_decay)

    def step(self, closure: Any = None) -> Any:
        # SGD shrinks by lr x weight_decay. Dividing by the group's peak lr (``initial_lr``, before a
        # schedule's factor) makes the shrink at the peak ``decay_per_step``, whatever lr, group
        # factor or lr_scaling set that peak to.
        for group in self.param_groups:
            group["weight_decay"] = group["decay_per_step"] / group.get("initial_lr", group["lr"])
        return super().step(closure)
