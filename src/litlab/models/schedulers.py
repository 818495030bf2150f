"""Per-step learning-rate schedules. The base module passes ``total_steps`` from the trainer."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def _warmup_then(
    optimizer: Optimizer,
    total_steps: int,
    warmup_fraction: float,
    final_factor: float,
    decay: Callable[[float], float],
) -> LambdaLR:
    """Linear warmup over ``warmup_fraction`` of the steps, then ``decay(progress)`` from 1 to ``final_factor``."""
    warmup = max(1, int(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return final_factor + (1 - final_factor) * decay(progress)

    return LambdaLR(optimizer, factor)


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.0, final_factor: float = 0.0
) -> LambdaLR:
    return _warmup_then(
        optimizer, total_steps, warmup_fraction, final_factor, lambda p: 0.5 * (1 + math.cos(math.pi * p))
    )


def warmup_linear(
    optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.0, final_factor: float = 0.0
) -> LambdaLR:
    return _warmup_then(optimizer, total_steps, warmup_fraction, final_factor, lambda p: 1 - p)
