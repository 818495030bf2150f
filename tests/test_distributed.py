"""Distributed and compiled runs: ddp_cpu shards the data, compiled checkpoints stay portable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from conftest import ROOT

FAST = ["logger=csv", "data.val_size=100", "data.download=false", "trainer.max_epochs=3"]


@pytest.mark.ddp
def test_ddp_cpu_ranks_see_disjoint_shards_and_match_single_process(
    run_script, cifar_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    )
    probe = [
        "+callbacks.shards._target_=probes.ShardProbe",
        f"+callbacks.shards.out_dir={tmp_path / 'shards'}",
    ]
    common = [
        "model=mlp",
        f"paths.data_dir={cifar_dir}",
        "data.batch_size=32",
        "seed=0",
        *FAST,
    ]
    ddp = run_script(*common, "trainer=ddp_cpu", "trainer.devices=2", *probe)
    single = run_script(*common, "trainer=cpu")
    rank0, rank1 = (json.loads((tmp_path / "shards" / f"rank{r}.json").read_text()) for r in (0, 1))
    assert len(rank0["seen"]) == len(rank1["seen"]) == 200  # 400 training images split over 2 ranks
    assert max(rank0["batch_sizes"]) == max(rank1["batch_sizes"]) == 16  # the global batch of 32, halved
    assert not set(rank0["seen"]) & set(rank1["seen"])
    assert ddp.metrics["test"]["test/acc"] > 0.5 and single.metrics["test"]["test/acc"] > 0.5
    assert abs(ddp.metrics["test"]["test/acc"] - single.metrics["test"]["test/acc"]) < 0.15
    assert len(list(ddp.run_dir.glob("**/metrics.json"))) == 1  # rank zero writes, once


@pytest.mark.ddp
def test_global_batch_must_divide_over_processes(run_script, cifar_dir):
    run = run_script(
        "model=mlp",
        f"paths.data_dir={cifar_dir}",
        "data.batch_size=33",
        "trainer=ddp_cpu",
        "trainer.devices=2",
        *FAST,
        expect_ok=False,
    )
    assert run.proc.returncode != 0 and "data.batch_size=33 is the global batch" in run.output


def test_compiled_and_eager_checkpoints_load_into_each_other():
    from functools import partial

    from litlab.models.mlp import MLPClassifier

    def make(compile_net: bool) -> MLPClassifier:
        model = MLPClassifier(
            hidden_sizes=[8],
            num_classes=3,
            input_shape=[4],
            optimizer=partial(torch.optim.SGD, lr=0.1),
            compile=compile_net,
        )
        model.setup("fit")
        return model

    compiled, eager = make(True), make(False)
    assert not [k for k in compiled.state_dict() if "_orig_mod" in k]
    eager.load_state_dict(compiled.state_dict(), strict=True)
    compiled.load_state_dict(eager.state_dict(), strict=True)
    inputs = torch.randn(5, 4)
    try:
        compiled_out = compiled(inputs)
    except Exception as error:  # only a missing C++ toolchain may excuse this
        if "compiler" in str(error).lower() or "cxx" in str(error).lower():
            pytest.skip(f"no working compiler for torch.compile: {error}")
        raise
    torch.testing.assert_close(compiled_out, eager(inputs))


@pytest.mark.slow
def test_ddp_under_multirun_runs_each_job_once(tmp_path, cifar_dir):
    import subprocess
    import sys

    sweep_dir = tmp_path / "sweep"
    command = [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        "-m",
        "trainer=ddp_cpu",
        "trainer.devices=2",
        "model=mlp",
        "model.optimizer.lr=0.01,0.001",
        f"paths.data_dir={cifar_dir}",
        f"hydra.sweep.dir={sweep_dir}",
        f"paths.log_dir={tmp_path / 'logs'}",
        *FAST,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]
    for job, lr in zip(jobs, ["0.01", "0.001"], strict=True):
        metrics = list(job.glob("**/metrics.json"))
        assert len(metrics) == 1
        result = json.loads(metrics[0].read_text())
        assert result["status"] == "completed" and f"model.optimizer.lr={lr}" in result["overrides"]
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").rglob("metrics.json"))


@pytest.mark.slow
def test_eval_runs_on_a_compiled_checkpoint(run_script, cifar_dir):
    trained = run_script("model=mlp", "model.compile=true", f"paths.data_dir={cifar_dir}", *FAST)
    evaluated = run_script(
        f"ckpt_path={trained.metrics['best']['ckpt_path']}",
        f"paths.data_dir={cifar_dir}",
        "trainer.accelerator=cpu",
        script="eval",
    )
    assert evaluated.metrics["test"]["test/acc"] == pytest.approx(
        trained.metrics["test"]["test/acc"], abs=1e-6
    )
