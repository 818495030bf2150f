"""Test-only callbacks, attached from the command line with +callbacks.<name>._target_=probes.<Class>."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L


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
