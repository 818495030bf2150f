"""A run interrupted inside an epoch (a real Ctrl-C or SIGTERM to its own process) and resumed from
interrupted.ckpt ends exactly as the uninterrupted run: same steps, metrics and weights."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

TINY = [
    "trainer.accelerator=cpu",
    "trainer.precision=32-true",
    "data.val_size=100",
    "data.labels_per_class=25",  # 250 training images: 8 batches an epoch
    "data.batch_size=32",
    "data.download=false",
    "trainer.max_epochs=2",
    "seed=0",
    "logger=none",
    "callbacks.rich_progress_bar=null",
    "trainer.enable_progress_bar=false",
]
MODELS = {
    "mlp_sigterm": (["model=mlp", "model.dropout=0.3"], "SIGTERM"),
    "cnn_augmented_ctrl_c": (["model=cnn", "data.crop_padding=2", "data.hflip=true"], "SIGINT"),
}


def weights_digest(ckpt: Path) -> str:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode() + state[key].numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.heavy
@pytest.mark.parametrize("name", list(MODELS))
def test_interrupted_mid_epoch_resumes_to_the_uninterrupted_result(run_script, cifar_dir, monkeypatch, name):
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    )
    model, signal_name = MODELS[name]
    common = [*model, f"paths.data_dir={cifar_dir}", *TINY]
    full = run_script(*common)
    stop = [
        "+callbacks.stop._target_=probes.InterruptAt",
        "+callbacks.stop.step=3",  # inside epoch 0
        f"+callbacks.stop.signal={signal_name}",
    ]
    stopped = run_script(*common, *stop, expect_ok=False)
    assert stopped.proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[signal_name], stopped.output[-3000:]
    assert stopped.metrics["status"] == "interrupted" and stopped.metrics["global_step"] == 3
    saved = torch.load(stopped.metrics["ckpt_path"], map_location="cpu", weights_only=True)
    assert saved["litlab_resume"] == {"batch_in_epoch": 3, "exact_mid_epoch": True}
    resumed = run_script(*common, f"ckpt_path={stopped.metrics['ckpt_path']}")
    assert "keeps no position" not in resumed.output
    for key in ("global_step", "epochs", "final", "test"):
        assert resumed.metrics[key] == full.metrics[key], key  # exactly, not approximately
    assert full.metrics["global_step"] == 16
    last = Path("checkpoints") / "last.ckpt"
    assert weights_digest(resumed.run_dir / last) == weights_digest(full.run_dir / last)
