"""``model.steps_per_execution``: K optimiser steps inside one Lightning batch.

The data module hands over K batches as one block, and each gets its own optimiser step, in the
order and with the updates of K Lightning batches. Lightning's per-batch bookkeeping (hooks and loop
state, about 0.7 ms on this CPU, a third of a small MLP's step) is then paid once per K steps.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities import rank_zero_info

# what Lightning calls around each manual backward and optimiser step
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


def settle_steps_per_execution(trainer: L.Trainer, wanted: int) -> int:
    """K, or 1 where Lightning's own one-step-per-batch loop is needed; tells the data module."""
    datamodule = trainer.datamodule
    blocks_possible = hasattr(datamodule, "batches_per_fetch")
    reason = ""
    if wanted > 1:
        # a callback that must run between every two optimiser steps says so with needs_every_step
        stepwise = [type(c).__name__ for c in trainer.callbacks if getattr(c, "needs_every_step", False)]
        if trainer.gradient_clip_val or trainer.accumulate_grad_batches != 1:
            reason = "gradient clipping and accumulation run in Lightning's one-step-per-batch loop"
        elif not blocks_possible:
            reason = f"{type(datamodule).__name__} hands out one batch at a time"
        elif stepwise:
            reason = f"callbacks {stepwise} act between optimiser steps"
        if reason:
            rank_zero_info(f"model.steps_per_execution={wanted} runs as 1: {reason}")
    steps = 1 if reason else wanted
    if blocks_possible:
        datamodule.batches_per_fetch = steps
    return steps


def direct_steps_possible(trainer: L.Trainer, module: L.LightningModule) -> bool:
    """Whether a step inside a block may call ``loss.backward()`` and ``optimizer.step()`` itself.

    Lightning's ``manual_backward`` and ``optimizer.step`` add three rounds of hooks over every
    callback and the precision plugin's wrapping: a small MLP ran at 0.84 of a plain loop's speed
    through them and at 0.98 without them, interleaved on this CPU. On one device, in 32-bit or
    bf16-mixed precision, without a profiler and with none of those hooks overridden, that is all
    they add; anywhere else (DDP's gradient sync, fp16's loss scaling, a callback reading
    gradients) the step goes through Lightning."""
    precision = trainer.precision_plugin
    plain_precision = type(precision) is Precision or (
        type(precision) is MixedPrecision and precision.scaler is None
    )
    hooked = any(
        getattr(type(callback), hook) is not getattr(L.Callback, hook)
        for callback in trainer.callbacks
        for hook in STEP_HOOKS
    ) or any(
        getattr(type(module), hook) is not getattr(L.LightningModule, hook)
        for hook in (*STEP_HOOKS, "backward")
    )
    return (
        type(trainer.strategy) is SingleDeviceStrategy
        and plain_precision
        and type(trainer.profiler) is PassThroughProfiler
        and not hooked
    )
