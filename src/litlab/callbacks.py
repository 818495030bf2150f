"""Callbacks that every litlab run gets, whatever the callbacks config says."""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.types import _Stateful
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from litlab.checkpoint_io import _temp_name

INTERRUPTED = "interrupted.ckpt"  # what Ctrl-C and SIGTERM save, beside the other checkpoints


class RunState(L.Callback):
    """Puts the run config and the RNG states into every checkpoint.

    The config lets ``eval.py`` rebuild the model from a checkpoint alone. The RNG states make a
    resumed run replay the uninterrupted one (Lightning restores model, optimiser and loops, but
    not the global generators that dropout and batch augmentation draw from). On Ctrl-C or SIGTERM it
    saves ``interrupted.ckpt`` beside the others instead of losing the epoch in progress.
    """

    def __init__(self, config: dict[str, Any], checkpoint_dir: str | Path) -> None:
        self.config = config
        self.checkpoint_dir = Path(checkpoint_dir)
        self.stop_signal: str | None = None  # "SIGINT" once Ctrl-C asked training to stop
        self.sigint_installed = False

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["litlab_config"] = self.config
        # whether a resume inside this epoch replays it exactly: every train loader keeps its position
        loaders = trainer.train_dataloader
        loaders = list(loaders.values()) if isinstance(loaders, dict) else loaders
        loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
        checkpoint["litlab_resume"] = {
            "batch_in_epoch": trainer.fit_loop.epoch_loop.batch_progress.current.completed,
            "exact_mid_epoch": all(isinstance(loader, _Stateful) for loader in loaders),
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        resume = checkpoint.get("litlab_resume") or {}
        if resume.get("batch_in_epoch") and not resume.get("exact_mid_epoch"):
            rank_zero_warn(
                f"resuming at batch {resume['batch_in_epoch']} of epoch {checkpoint.get('epoch')} with a train "
                "loader that keeps no position: the rest of this epoch is drawn in a new order (same number "
                "of steps), so the result differs from an uninterrupted run"
            )

    # --- Ctrl-C: stop at the next batch boundary, as SIGTERM does ------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Python raises KeyboardInterrupt wherever the first Ctrl-C lands (inside a fetch, an optimiser
        step, another callback's hook), so the checkpoint could hold a half-finished batch. Instead, as
        for SIGTERM, training stops after the batch in progress (Lightning's own SIGTERM path); a
        second Ctrl-C stops at once. An ignored SIGINT (a background job) stays ignored."""
        is_main = threading.current_thread() is threading.main_thread()
        if is_main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, lambda signum, frame: self._ctrl_c(trainer))
            self.sigint_installed = True

    def _ctrl_c(self, trainer: L.Trainer) -> None:
        if self.stop_signal is not None or trainer.sanity_checking:
            raise KeyboardInterrupt
        self.stop_signal = "SIGINT"
        trainer._signal_connector.received_sigterm = True  # checked by Lightning after every batch
        rank_zero_info("\nCtrl-C: stopping after this batch (press it again to stop at once)")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_sigint()

    def _restore_sigint(self) -> None:
        if self.sigint_installed and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.sigint_installed = False

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, lists and numbers only, so checkpoints load with torch.load(weights_only=True)."""
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        numpy_state = [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]
        state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        kind, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # Ctrl-C, or SIGTERM (scancel, a time limit, a preemption): Lightning stops at a batch boundary
        self._restore_sigint()
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        path = self.checkpoint_dir / INTERRUPTED
        trainer.save_checkpoint(path)
        rank_zero_info(f"Interrupted: saved {path}. Resume with ckpt_path={path}")


class RichProgressBar(L.pytorch.callbacks.RichProgressBar):
    """Lightning's rich bar, with the training bar updated at most ``refresh_rate`` times a second,
    the rate its drawing thread redraws at (and on an epoch's last batch). Lightning's own reads
    every logged metric and updates the task on every batch, for updates that are never drawn:
    a visible share of a small model's step. Slow steps still update the bar on every batch."""

    _last_update = 0.0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        last_batch = batch_idx + 1 >= self.total_train_batches
        if last_batch or now - self._last_update >= 1.0 / max(1, self.refresh_rate):
            self._last_update = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def copy_unless_same(source: Path, target: Path) -> None:
    """Copy beside the target, then rename over it; an identical copy (size and mtime) is kept.

    A test after a resumed fit restores this callback from the copy itself: rewriting the copy in
    place then would cut the bytes from under another rank still reading it (FSDP loads lazily)."""
    held, wanted = (target.stat() if target.exists() else None), source.stat()
    if held and (held.st_size, held.st_mtime_ns) == (wanted.st_size, wanted.st_mtime_ns):
        return
    temp = _temp_name(target)
    shutil.copy2(source, temp)
    os.replace(temp, target)


class ModelCheckpoint(L.pytorch.callbacks.ModelCheckpoint):
    """Lightning's, except that ``last.ckpt`` is always the latest epoch, and that a run resumed
    into a new run directory keeps the old run's best.

    Lightning 2.6 writes ``last.ckpt`` only at a step where it also saved a top-k checkpoint, so
    after the monitor stopped improving it stayed at the best epoch and resuming from it silently
    redid every later epoch. Here, whenever Lightning considered saving (each epoch's or each
    validation's end) and saved nothing, ``last.ckpt`` is written anyway (``save_last=True``;
    ``"link"`` keeps Lightning's behaviour).

    Lightning forgets the best scores when the directory changed, so the first epoch after resuming
    became the best whatever its score, and the resumed run tested another checkpoint than the
    uninterrupted one. The old best files are copied in first: pruning the top k then deletes
    copies, never the earlier run's own files.
    """

    @property
    def state_key(self) -> str:
        # Lightning formats this key (a repr of the monitor settings) for every hook of every step, as
        # a profiler label; the settings never change after __init__, so it is formatted once
        if "_state_key" not in self.__dict__:
            self.__dict__["_state_key"] = super().state_key
        return self.__dict__["_state_key"]

    def _last_due(self, trainer: L.Trainer, on_train_epoch_end: bool) -> bool:
        return (
            self.save_last is True
            and not self._should_skip_saving_checkpoint(trainer)
            and self._should_save_on_train_epoch_end(trainer) == on_train_epoch_end
        )

    def _save_last_if_nothing_saved(self, trainer: L.Trainer) -> None:
        if self._last_global_step_saved != trainer.global_step:  # top-k saved nothing, so neither did last
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = self._last_due(trainer, on_train_epoch_end=True)
        super().on_train_epoch_end(trainer, pl_module)
        if due:
            self._save_last_if_nothing_saved(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = self._last_due(trainer, on_train_epoch_end=False)
        super().on_validation_end(trainer, pl_module)
        if due:
            self._save_last_if_nothing_saved(trainer)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_best = state_dict.get("best_k_models") or {}
        moved = self.dirpath is not None and state_dict.get("dirpath", self.dirpath) != self.dirpath
        if not (moved and old_best and all(Path(path).is_file() for path in old_best)):
            super().load_state_dict(state_dict)
            return
        copies = {path: str(Path(self.dirpath) / Path(path).name) for path in old_best}
        if rank_zero_only.rank == 0:
            Path(self.dirpath).mkdir(parents=True, exist_ok=True)
            for path, copy in copies.items():
                copy_unless_same(Path(path), Path(copy))
        self.best_k_models = {copies[path]: score for path, score in old_best.items()}
        self.best_model_score = state_dict["best_model_score"]
        self.best_model_path = copies.get(state_dict["best_model_path"], state_dict["best_model_path"])
        self.kth_best_model_path = copies.get(state_dict["kth_best_model_path"], "")
        self.kth_value = state_dict["kth_value"]
