"""SLURM's warning before a time limit or a preemption: checkpoint at the next batch, then requeue.

SLURM signals a job before its time limit (``#SBATCH --signal``): submitit asks for USR2
(``SUBMITIT_PREEMPT_SIGNAL`` changes it), Lightning's own SLURM support listens on USR1. submitit's
handler requeues at once and raises SystemExit wherever the step is, so nothing is saved and the
requeued job redoes the epoch; Lightning's saves an ``hpc_ckpt_N.ckpt`` that litlab's resume does not
read, so it is switched off (``cluster_plugins``). During fit, ``Preemption`` makes either signal do
what SIGTERM does: stop at the next batch boundary, save ``interrupted.ckpt`` and write metrics.json
(status interrupted). Then ``requeue`` hands over to submitit's handler, which requeues the job
(counting ``max_num_timeout``), or outside submitit runs ``scontrol requeue``. The requeued job
(``SLURM_RESTART_COUNT`` > 0) continues from interrupted.ckpt in the same job directory
(``litlab.pipeline.run_entry_point``). SIGTERM itself (``scancel``, ``scontrol requeue``, a preemption
by another job) already saves and exits 143; SLURM requeues such a job by itself when it was a requeue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType
from typing import Any

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_info


def warning_signals() -> tuple[signal.Signals, ...]:
    """submitit's signal first (its handler is the one that requeues), then Lightning's USR1."""
    submitit = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), signal.SIGUSR2)
    return tuple(dict.fromkeys([submitit, signal.SIGUSR1]))


def cluster_plugins() -> list[Any]:
    """Lightning's SLURM environment without its own requeue handler: ``Preemption`` does it here."""
    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


class Preemption(L.Callback):
    """Inside a SLURM job, the time-limit / preemption warning stops fit like SIGTERM (see the module)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None  # the warning received, if any
        self._signum = 0
        self._requeue_handler: Any = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # here, not in setup: Lightning installs its own handlers after on_fit_start, and restores
        # the ones from before (submitit's) when fit ends, so these live exactly as long as the fit
        if not SLURMEnvironment.detect() or threading.current_thread() is not threading.main_thread():
            return
        signals = warning_signals()
        previous = signal.getsignal(signals[0])
        self._requeue_handler = previous if callable(previous) else None

        def stop_at_next_batch(signum: int, frame: FrameType | None) -> None:
            self.signal_name, self._signum = signal.Signals(signum).name, signum
            rank_zero_info(f"{self.signal_name}: saving at the next batch boundary, then requeueing")
            # what Lightning's SIGTERM handler sets, without the collective it runs inside the handler;
            # under DDP, rank 0's flag reaches every rank at the next step's broadcast
            trainer._signal_connector.received_sigterm = True

        for signum in signals:
            signal.signal(signum, stop_at_next_batch)

    def requeue(self) -> None:
        """After the interrupt checkpoint and metrics.json are written: requeue the job (rank 0)."""
        if self.signal_name is None or int(os.environ.get("SLURM_PROCID", "0")) != 0:
            return
        if self._requeue_handler is not None:  # submitit's: requeues, then raises SystemExit
            self._requeue_handler(self._signum, None)
            return
        array = os.environ.get("SLURM_ARRAY_JOB_ID")
        job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        print(f"litlab: requeue of job {job}: {done.stderr.strip() or 'done'}", file=sys.stderr)


def preemption_of(trainer: L.Trainer) -> Preemption | None:
    return next((c for c in trainer.callbacks if isinstance(c, Preemption)), None)
