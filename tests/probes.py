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
