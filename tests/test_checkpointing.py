"""Checkpoints under faults: last.ckpt is always the latest epoch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from litlab.callbacks import ModelCheckpoint


class FallingAccuracy(BoringModel):
    """Validation accuracy is best in epoch 0 and falls after it, so top-1 never saves again."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs_trained: list[int] = []

    def on_train_epoch_start(self) -> None:
        self.epochs_trained.append(self.current_epoch)

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", 1.0 - 0.1 * self.current_epoch - 0.01 * self.global_step / 1000)
        return super().validation_step(batch, batch_idx)


def fit(tmp_path: Path, max_epochs: int, val_check_interval: float, ckpt_path: Path | None = None):
    model = FallingAccuracy()
    callback = ModelCheckpoint(
        dirpath=tmp_path / "checkpoints",
        filename="epoch_{epoch:03d}",
        monitor="val/acc",
        mode="max",
        save_last=True,
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    trainer = L.Trainer(
        max_epochs=max_epochs,
        limit_train_batches=4,
        limit_val_batches=2,
        val_check_interval=val_check_interval,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(model, ckpt_path=ckpt_path)
    return model, callback, trainer


@pytest.mark.parametrize("val_check_interval", [1.0, 0.5])  # saved at epoch end / at validation end
def test_last_ckpt_is_the_latest_epoch_when_the_monitor_falls(tmp_path, val_check_interval):
    _, callback, trainer = fit(tmp_path, 4, val_check_interval)
    last = Path(callback.last_model_path)
    assert last.name == "last.ckpt"
    stored = torch.load(last, map_location="cpu", weights_only=True)
    assert (stored["epoch"], stored["global_step"]) == (3, trainer.global_step) == (3, 16)
    assert Path(callback.best_model_path).name == "epoch_000.ckpt"  # the best stays the best
    assert sorted(p.name for p in last.parent.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]

    resumed, _, trainer = fit(tmp_path / "resumed", 6, val_check_interval, ckpt_path=last)
    assert resumed.epochs_trained == [4, 5]  # continues after epoch 3, redoes nothing
    assert trainer.global_step == 24


# --- atomic writes under SIGKILL -------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
# a ~4 MB checkpoint (MLP 600-600 + Adam state), written twice an epoch (epoch_NNN + last)
KILL_RUN = [
    "data=toy",
    "data.steps_per_epoch=1",
    "model=mlp",
    "model.hidden_sizes=[600,600]",
    "logger=none",
    "trainer.accelerator=cpu",
    "trainer.precision=32-true",
    "callbacks.model_checkpoint.save_top_k=-1",
    "callbacks.rich_progress_bar=null",
    "test=false",
]


def other_filesystem_tmpdir(tmp_path: Path, size: str = "64m") -> Path:
    """A small tmpfs mounted for the test (as root), so $TMPDIR is not the run dir's filesystem."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    assert os.stat(mount).st_dev != os.stat(tmp_path).st_dev
    return mount


def temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.endswith(".part")]


def kill_mid_write(command: list[str], env: dict, folder: Path, tmpdir: Path, min_files: int) -> bool:
    """Start a run and SIGKILL it while a checkpoint is being written; True if it died mid-write."""
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=folder.parent.parent
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            names = os.listdir(folder) if folder.is_dir() else []
            ckpts = [n for n in names if n.endswith(".ckpt")]
            writing = any(n.endswith(".tmp") for n in names) or any(os.scandir(tmpdir))
            if len(ckpts) >= min_files and writing:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.0005)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pytest.fail(f"the run never wrote a checkpoint: {proc.stderr.read().decode()[-3000:]}")


@pytest.mark.heavy
@pytest.mark.parametrize("tmpdir_kind", ["other_filesystem", "same_filesystem"])
def test_killed_checkpoint_writes_leave_only_loadable_checkpoints(tmp_path, tmpdir_kind):
    tmpdir = other_filesystem_tmpdir(tmp_path) if tmpdir_kind == "other_filesystem" else tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    run_dir = tmp_path / "run"
    folder = run_dir / "checkpoints"
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1"}
    base = [sys.executable, str(ROOT / "src" / "train.py"), *KILL_RUN, f"hydra.run.dir={run_dir}"]
    mid_write = 0
    try:
        for attempt in range(3):  # the first run, then resumes that overwrite last.ckpt in place
            resume = [f"ckpt_path={folder / 'last.ckpt'}"] if attempt else []
            assert kill_mid_write(
                [*base, "trainer.max_epochs=100000", *resume], env, folder, tmpdir, 2 + 2 * attempt
            )
            mid_write += bool(temps(folder))  # the killed writer's temp file, not yet swept
            for ckpt in folder.glob("*.ckpt"):  # every checkpoint left is whole, the one being replaced too
                torch.load(ckpt, map_location="cpu", weights_only=True)
            assert not list(tmpdir.iterdir()), "a temp file leaked into $TMPDIR"
        assert mid_write, "no kill landed during a checkpoint write"
        epoch = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)["epoch"]
        done = subprocess.run(
            [*base, f"trainer.max_epochs={epoch + 2}", f"ckpt_path={folder / 'last.ckpt'}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert not temps(folder), "a killed writer's temp file was never removed"
        assert torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == epoch + 1
    finally:
        if tmpdir_kind == "other_filesystem":
            subprocess.run(["umount", str(tmpdir)], check=False)


def test_a_failed_write_keeps_the_old_checkpoint_and_leaves_no_temp(tmp_path):
    """A real ENOSPC: a 1 MB tmpfs holding a small checkpoint, then a 4 MB one written over it."""
    from litlab.checkpoint_io import AtomicCheckpointIO

    folder = other_filesystem_tmpdir(tmp_path, "1m")
    try:
        io, target = AtomicCheckpointIO(), folder / "last.ckpt"
        io.save_checkpoint({"epoch": 0, "w": torch.zeros(1000)}, target)
        with pytest.raises((OSError, RuntimeError)):  # torch wraps the ENOSPC
            io.save_checkpoint({"epoch": 1, "w": torch.zeros(1_000_000)}, target)
        assert io.load_checkpoint(target)["epoch"] == 0
        assert [p.name for p in folder.iterdir()] == ["last.ckpt"]
    finally:
        subprocess.run(["umount", str(folder)], check=False)
