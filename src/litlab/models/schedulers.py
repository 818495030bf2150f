"""Per-step learning-rate schedules. The base module passes ``total_steps`` from the trainer.

Each is a ``LambdaLR`` factor on the optimiser's lr (per group), so per-group learning rates keep
their ratios. All three take ``warmup_fraction``, ``start_factor`` and ``final_factor``, so an
experiment's numbers carry over when ``model/scheduler`` is switched: ``warmup_linear`` (airbench:
linear warmup from ``start_factor``, then linear decay), ``warmup_cosine``, and ``one_cycle`` (Smith's
one-cycle: cosine up to the peak, cosine down far below the start; unlike
``torch.optim.lr_scheduler.OneCycleLR`` it leaves momentum alone and peaks at ``model.optimizer.lr``).
"""

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
    start_factor: float = 0.0,
    warmup_shape: Callable[[float], float] = lambda p: p,
) -> LambdaLR:
    """Warmup from ``start_factor`` to 1 over ``warmup_fraction`` of the steps, then ``decay(progress)``
    from 1 to ``final_factor``."""
    warmup = max(1, int(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return start_factor + (1 - start_factor) * warmup_shape((step + 1) / warmup)
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return final_factor + (1 - final_factor) * decay(progress)

    return LambdaLR(optimizer, factor)


def _cosine_down(p: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * p))


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.0,
    final_factor: float = 0.0,
    start_factor: float = 0.0,
) -> LambdaLR:
    return _warmup_then(optimizer, total_steps, warmup_fraction, final_factor, _cosine_down, start_factor)


def warmup_linear(
    optimizer: Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.0,
    final_factor: float = 0.0,
    start_factor: float = 0.0,
) -> LambdaLR:
    return _warmup_then(optimizer, total_steps, warmup_fraction, final_factor, lambda p: 1 - p, start_factor)


def one_cycle(
    optimizer: Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.3,
    final_factor: float = 4e-6,
    start_factor: float = 0.04,
) -> LambdaLR:
    """Cosine ramp from ``start_factor`` to 1 over ``warmup_fraction`` of the steps, cosine down to
    ``final_factor``. Defaults: OneCycleLR's (pct_start 0.3, div_factor 25, final_div_factor 1e4)."""
    return _warmup_then(
        optimizer,
        total_steps,
        warmup_fraction,
        final_factor,
        _cosine_down,
        start_factor,
        warmup_shape=lambda p: 1 - _cosine_down(p),
    )
