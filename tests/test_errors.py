"""Bad input fails with one clear line that names the fix, and loses nothing already saved."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from fakedata import write_cifar10  # noqa: E402

FAST = [
    "logger=none",
    "trainer.accelerator=cpu",
    "data.val_size=100",
    "data.batch_size=32",
    "data.download=false",
]


def last_line(run) -> str:
    return run.proc.stderr.strip().splitlines()[-1]


def test_unknown_model_name_lists_the_choices(run_script):
    run = run_script("model=transformerz", expect_ok=False)
    assert run.proc.returncode != 0
    assert "model/transformerz" in run.output and "Available options" in run.output and "cnn" in run.output


def test_bad_value_type_is_one_line(run_script, tmp_path):
    run = run_script("data.batch_size=lots", f"paths.data_dir={tmp_path}", expect_ok=False)
    assert run.proc.returncode == 1
    assert last_line(run).startswith("error: data.batch_size='lots' has the wrong type")


def test_misspelt_key_is_one_line(run_script, tmp_path):
    run = run_script("+model.hiden_sizes=[10]", "model=mlp", f"paths.data_dir={tmp_path}", expect_ok=False)
    assert run.proc.returncode == 1 and "model.hiden_sizes is not an argument" in last_line(run)


def test_unknown_activation_is_one_line(run_script, tmp_path):
    run = run_script("model=mlp", "model.activation=sigmoidal", f"paths.data_dir={tmp_path}", expect_ok=False)
    assert run.proc.returncode == 1 and "unknown activation 'sigmoidal'" in last_line(run)


def test_missing_data_offline_names_the_fix(run_script, tmp_path):
    run = run_script("data=cifar10", f"paths.data_dir={tmp_path}", *FAST, expect_ok=False)
    line = last_line(run)
    assert run.proc.returncode == 1
    assert (
        line.startswith("error: CIFAR-10 not found in") and "paths.data_dir=" in line and "DATA_DIR" in line
    )
    assert (run.run_dir / "metrics.json").exists() and run.metrics["status"] == "failed"


def test_truncated_batch_file_is_named(run_script, tmp_path):
    folder = write_cifar10(tmp_path)
    (folder / "test_batch").write_bytes((folder / "test_batch").read_bytes()[:777])
    run = run_script("data=cifar10", f"paths.data_dir={tmp_path}", *FAST, expect_ok=False)
    assert run.proc.returncode == 1 and "test_batch is truncated or corrupt" in last_line(run)


def test_nan_loss_stops_with_advice_and_keeps_checkpoints(run_script, cifar_dir):
    good = run_script("model=mlp", f"paths.data_dir={cifar_dir}", "trainer.max_epochs=1", *FAST)
    last = Path(good.metrics["best"]["last_ckpt_path"])
    before = last.read_bytes()
    run = run_script(
        "model=mlp",
        "model.optimizer.lr=1e30",
        f"paths.data_dir={cifar_dir}",
        "trainer.max_epochs=3",
        *FAST,
        f"callbacks.model_checkpoint.dirpath={last.parent}",  # a new run, writing beside the good one
        expect_ok=False,
    )
    assert run.proc.returncode == 1
    assert "training diverged" in last_line(run) and "model.optimizer.lr" in last_line(run)
    assert last.read_bytes() == before  # the diverged weights never overwrite a good checkpoint


def test_deferred_nan_check_never_reaches_a_checkpoint(tmp_path):
    """On an accelerator the loss is not read every step (each read stalls the device): a NaN step
    only sets a flag, and the flag is read before any checkpoint is written. Run here on the CPU
    with that deferred path forced on."""
    from functools import partial

    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from litlab.errors import NonFiniteLossError
    from litlab.models.mlp import MLPClassifier

    class DeferredCheck(MLPClassifier):
        loss_read_is_cheap = False

        def model_step(self, batch):
            loss, preds, target = super().model_step(batch)
            return (loss * float("nan") if self.training and self.global_step == 3 else loss), preds, target

    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    model = DeferredCheck(
        num_classes=2, input_shape=[4], optimizer=partial(torch.optim.SGD, lr=0.1), hidden_sizes=[8]
    )
    checkpoints = tmp_path / "checkpoints"
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False, num_sanity_val_steps=0,
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=checkpoints, save_last=True)],
    )  # fmt: skip
    with pytest.raises(NonFiniteLossError, match="loss became non-finite"):
        trainer.fit(model, DataLoader(data, batch_size=8))  # 8 steps an epoch: the NaN is at step 3
    assert not checkpoints.exists() or not list(checkpoints.iterdir())


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_save_a_resumable_checkpoint(tmp_path, cifar_dir, signal_name):
    """Ctrl-C, and SIGTERM (scancel, a time limit, a preemption), save interrupted.ckpt and record
    status interrupted in metrics.json, which a sweep's resume=true continues from."""
    import json
    import os
    import signal
    import subprocess
    import time

    from conftest import ROOT

    run_dir = tmp_path / "interrupted"
    command = [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        "model=mlp",
        f"paths.data_dir={cifar_dir}",
        "trainer.max_epochs=100000",
        f"hydra.run.dir={run_dir}",
        "logger=csv",
        # no live progress display: one CI run hung after the interrupt with Rich's refresh thread
        # running; what this test checks is the checkpoint, not the progress bar
        "callbacks.rich_progress_bar=null",
        "trainer.enable_progress_bar=false",
        *FAST,
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # a shell starts background jobs with Ctrl-C ignored, and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 120
        while not (run_dir / "checkpoints" / "last.ckpt").exists() and time.time() < deadline:
            time.sleep(0.2)
        proc.send_signal(getattr(signal, signal_name))
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()  # never leave a run with max_epochs=100000 behind
    assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[signal_name], output[-2000:]
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    assert saved.exists() and f"Resume with ckpt_path={saved}" in output
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["signal"] == signal_name
    assert record["ckpt_path"] == str(saved) and record["global_step"] > 0
    assert torch.load(saved, map_location="cpu", weights_only=False)["global_step"] == record["global_step"]
    from litlab.sweeps.jobs import interrupted_checkpoint

    assert interrupted_checkpoint(run_dir) == saved


@pytest.mark.heavy
def test_wandb_online_with_a_wrong_key_fails_fast_with_one_line(run_script, monkeypatch):
    """No route to the W&B server here (and a wrong key where there is one): the run must not wait
    W&B's 90 s default, and must end in one line naming the fixes."""
    import time

    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef" * 2 + "01234567")  # 40 characters, wrong
    start = time.monotonic()
    run = run_script(
        "experiment=seed_perceptron",
        "logger=wandb",
        "logger.wandb.settings.init_timeout=5",
        "+logger.wandb.mode=online",  # run_script's WANDB_MODE=offline would keep it from trying
        expect_ok=False,
    )
    assert time.monotonic() - start < 60
    assert run.proc.returncode == 1 and "Traceback" not in run.proc.stderr, run.output[-3000:]
    line = last_line(run)
    assert line.startswith("error: W&B could not start the run online (") and "WANDB_MODE=offline" in line
