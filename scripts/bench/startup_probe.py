"""A bench-only callback: records when the first optimiser step finished, then stops the run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning as L


class FirstStepProbe(L.Callback):
    def __init__(self, out_file: str) -> None:
        self.out_file = Path(out_file)

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if not self.out_file.exists():
            launched = float(os.environ["LITLAB_LAUNCH_TIME"])
            self.out_file.write_text(f"{time.time() - launched:.3f}")
            trainer.should_stop = True
