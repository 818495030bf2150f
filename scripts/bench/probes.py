"""Bench-only callbacks, attached with +callbacks.<name>._target_=probes.<Class> (PYTHONPATH=scripts/bench)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import litlab  # noqa: F401  (first: makes torchvision, and so lightning, importable here)

# isort: split
import lightning as L


class FirstStepProbe(L.Callback):
    """Records seconds from LITLAB_LAUNCH_TIME (set by the bench at launch) to the end of the first step."""

    def __init__(self, out_file: str) -> None:
        self.out_file = Path(out_file)

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if not self.out_file.exists():
            launched = float(os.environ["LITLAB_LAUNCH_TIME"])
            self.out_file.write_text(f"{time.time() - launched:.3f}")


def synced_clock() -> float:
    """perf_counter after the GPU has finished its queued work (an accelerator runs ahead of the host)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


class StepRateProbe(L.Callback):
    """Records the first batch's duration (compilation shows up there) and steady-state training
    batches per second after ``warmup`` batches, so compilation and first-run warm-up stay out of the
    timed window. Batches, not ``global_step``: a GAN's batch takes an optimiser step per network."""

    def __init__(self, out_file: str, warmup: int = 5) -> None:
        self.out_file, self.warmup = Path(out_file), warmup
        self.first_step_s = 0.0
        self.batches = 0

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if self.batches == 0:
            self.t0 = synced_clock()
        if self.batches == self.warmup:
            self.start = synced_clock()

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        self.batches += 1
        if self.batches == 1:
            self.first_step_s = synced_clock() - self.t0

    def on_train_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_rank == 0:
            rate = (self.batches - self.warmup) / (synced_clock() - self.start)
            self.out_file.write_text(json.dumps({"first_step_s": self.first_step_s, "steps_per_s": rate}))


class FitTimeProbe(L.Callback):
    """Records training seconds: from the start of fit (so data-dependent init such as patch whitening
    counts) to the end of the last step, synchronising CUDA; data loading before fit and the test are out."""

    def __init__(self, out_file: str) -> None:
        self.out_file = Path(out_file)

    def on_fit_start(self, trainer: L.Trainer, *args: object) -> None:
        self.start = synced_clock()

    def on_train_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_rank == 0:
            seconds = synced_clock() - self.start
            self.out_file.write_text(json.dumps({"train_s": seconds, "steps": trainer.global_step}))
