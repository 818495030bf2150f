"""Test-only callbacks, attached from the command line with +callbacks.<name>._target_=probes.<Class>."""

from __future__ import annotations

import json
from pathlib import Path

import litlab  # noqa: F401  (first: makes torchvision, and so lightning, importable here)

# isort: split
import lightning as L

from litlab.data.mnist import MNISTDataModule


class ShardProbe(L.Callback):
    """Writes, per rank, a checksum of every training sample it saw in epoch 0, and its batch sizes."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.seen: list[int] = []
        self.batch_sizes: list[int] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.current_epoch == 0:
            images = batch[0].flatten(1).double()
            self.seen += [int(v) for v in (images * 1000).sum(1).round().tolist()]
            self.batch_sizes.append(len(images))

    def on_train_epoch_end(self, trainer, module) -> None:
        if trainer.current_epoch == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / f"rank{trainer.global_rank}.json").write_text(
                json.dumps({"seen": self.seen, "batch_sizes": self.batch_sizes})
            )


class PauseForSignal(L.Callback):
    """On a job's first attempt, at train batch ``batch`` of epoch ``epoch``: write ``marker`` and wait
    (at most ``timeout`` s) until a stop signal arrived, so a test's signal lands mid-epoch."""

    def __init__(self, marker: str, epoch: int = 1, batch: int = 2, timeout: float = 60) -> None:
        self.marker, self.epoch, self.batch, self.timeout = Path(marker), epoch, batch, timeout

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        import os
        import time

        first_attempt = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) == 0
        if first_attempt and (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            job = os.environ.get("SLURM_JOB_ID")
            self.marker.write_text(json.dumps({"global_step": trainer.global_step, "job_id": job}))
            deadline = time.time() + self.timeout
            while not trainer.received_sigterm and time.time() < deadline:
                time.sleep(0.05)


class RankProbe(L.Callback):
    """Writes, per global rank, how Lightning placed the process: ranks, nodes, world size, SLURM node."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_fit_start(self, trainer, module) -> None:
        import os

        self.out_dir.mkdir(parents=True, exist_ok=True)
        place = {
            "global_rank": trainer.global_rank,
            "local_rank": trainer.local_rank,
            "node_rank": trainer.node_rank,
            "world_size": trainer.world_size,
            "num_nodes": trainer.num_nodes,
            "slurm_node": os.environ.get("SLURMD_NODENAME"),
            "is_global_zero": trainer.is_global_zero,
        }
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(place))


class RecordingMNIST(MNISTDataModule):
    """``data._target_=probes.RecordingMNIST +data.record_dir=D``: MNIST whose ``prepare_data`` leaves
    one file per process that ran it, named by the process's node, local and global rank."""

    def __init__(self, record_dir: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.record_dir = Path(record_dir)

    def prepare_data(self) -> None:
        trainer = self.trainer
        self.record_dir.mkdir(parents=True, exist_ok=True)
        (
            self.record_dir / f"node{trainer.node_rank}-local{trainer.local_rank}-global{trainer.global_rank}"
        ).touch()
        super().prepare_data()
