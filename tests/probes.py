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


def job_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


class WeightDigest(L.Callback):
    """Per rank, a SHA-256 of the parameters of each top-level submodule at the start of training,
    after every training epoch and at the end of fit (``<job dir>/digests/rank<N>.json``), and the optimisers' param groups.
    Parameters only: BatchNorm statistics are each rank's own between DDP's buffer broadcasts.
    ``save_weights``: also the parameters themselves (``rank<N>.pt``), for a tolerance comparison."""

    def __init__(self, save_weights: bool = False) -> None:
        self.save_weights = save_weights
        self.record: dict = {"epochs": {}, "param_groups": []}

    @staticmethod
    def digests(module: L.LightningModule) -> dict[str, str]:
        import hashlib

        import torch

        hashes: dict[str, hashlib._Hash] = {}
        for name, param in module.named_parameters():
            data = param.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
            hashes.setdefault(name.split(".")[0], hashlib.sha256()).update(name.encode() + data)
        return {name: h.hexdigest() for name, h in hashes.items()}

    def on_train_start(self, trainer, module) -> None:
        self.record["start"] = self.digests(module)
        names = {id(p): n for n, p in module.named_parameters()}
        self.record["param_groups"] = [
            {
                "lr": group["lr"],
                "lr_factor": group.get("lr_factor", 1.0),
                "params": [names.get(id(p), "?") for p in group["params"]],
            }
            for optimizer in trainer.optimizers
            for group in optimizer.param_groups
        ]

    def on_train_epoch_end(self, trainer, module) -> None:
        self.record["epochs"][str(trainer.current_epoch)] = self.digests(module)

    def on_fit_end(self, trainer, module) -> None:
        self.record["fit_end"] = self.digests(module)
        self.record["world_size"] = trainer.world_size
        self.record["param_groups_end"] = [len(o.param_groups) for o in trainer.optimizers]
        out = job_dir() / "digests"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.record, indent=1))
        if self.save_weights:
            import torch

            weights = {n: p.detach().cpu() for n, p in module.named_parameters()}
            torch.save(weights, out / f"rank{trainer.global_rank}.pt")


class FailOnRank(L.Callback):
    """Raises on one rank only, at a training batch: what a bug on a non-zero rank looks like."""

    def __init__(self, rank: int = 1, batch: int = 1) -> None:
        self.rank, self.batch = rank, batch

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_rank == self.rank and batch_idx == self.batch:
            raise RuntimeError(f"probe failure on rank {self.rank} at batch {batch_idx}")


class InterruptAt(L.Callback):
    """Sends ``signal`` (SIGINT: a Ctrl-C, or SIGTERM) to its own process after training step ``step``:
    a real interrupt, at a known point inside an epoch."""

    def __init__(self, step: int, signal: str = "SIGINT") -> None:
        self.step, self.signal = step, signal

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        import os
        import signal

        if trainer.global_step == self.step:
            os.kill(os.getpid(), getattr(signal, self.signal))


class FillDisk(L.Callback):
    """Fills the run directory's filesystem after testing: the disk is full when the run writes its
    results (what a shared disk filling up during a long run does)."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_test_end(self, trainer, module) -> None:
        with open(self.out_dir / "filler", "wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        (self.out_dir / "filler").chmod(0o644)


class FSDPShardProbe(L.Callback):
    """Writes, per rank, the FSDP units and how many elements of each parameter this rank holds."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_end(self, trainer, module) -> None:
        from torch.distributed.fsdp import FullyShardedDataParallel

        def clean(name: str) -> str:
            return name.replace("_fsdp_wrapped_module.", "").replace("._fsdp_wrapped_module", "")

        units = [clean(n) for n, m in module.named_modules() if isinstance(m, FullyShardedDataParallel)]
        local = {clean(n): p.numel() for n, p in module.named_parameters()}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(
            json.dumps({"units": units, "local_numel": local})
        )
