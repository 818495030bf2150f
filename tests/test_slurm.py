"""On a real SLURM cluster (make test-slurm starts one on this machine: scripts/slurm_cluster.sh).

Sweeps go through ``hydra/launcher=submitit_slurm_cpu`` as a user's would: sbatch, srun, submitit's
job pickles, requeue. The tests skip when no cluster answers, unless LITLAB_REQUIRE_SLURM is set
(make test-slurm sets it), where a missing or broken cluster fails them instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from fakedata import write_mnist

pytestmark = pytest.mark.slurm

QUIET = ["callbacks.rich_progress_bar=null", "trainer.enable_progress_bar=false"]  # no progress in logs
SWEEP_TIMEOUT_S = 240


def cluster_problem(env: dict[str, str]) -> str | None:
    """Why no job could run here, or None when sinfo reaches a controller with a usable node."""
    if not shutil.which("sinfo"):
        return "no SLURM client (sinfo) on PATH"
    try:
        answer = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%t"], env=env, capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "sinfo got no answer from a controller within 20 s"
    if answer.returncode:
        return f"sinfo reaches no controller ({(answer.stderr.strip().splitlines() or ['?'])[-1]})"
    states = set(answer.stdout.split())
    if not states & {"idle", "mix", "alloc"}:
        return f"no SLURM node is up (states: {sorted(states) or 'none'})"
    return None


@pytest.fixture(scope="module")
def slurm_env() -> dict[str, str]:
    """The environment a sweep is launched with: the cluster's SLURM_CONF and the test probes' path."""
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    if "SLURM_CONF" not in env:  # the cluster scripts/slurm_cluster.sh starts, if it is up
        script = ROOT / "scripts" / "slurm_cluster.sh"
        conf = subprocess.run(["bash", str(script), "conf"], capture_output=True, text=True).stdout.strip()
        if conf and Path(conf).is_file():
            env["SLURM_CONF"] = conf
    if problem := cluster_problem(env):
        if os.environ.get("LITLAB_REQUIRE_SLURM"):
            pytest.fail(f"LITLAB_REQUIRE_SLURM is set but {problem}; see scripts/slurm_cluster.sh status")
        pytest.skip(f"{problem}: start one with scripts/slurm_cluster.sh start (make test-slurm does)")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def mnist_5k(tmp_path_factory) -> Path:
    """Fake MNIST with room for the default 5,000-image validation split, which every experiment keeps."""
    root = tmp_path_factory.mktemp("mnist_5k")
    write_mnist(root, train=5400, test=200)
    return root


def sweep(
    tmp_path: Path, env: dict[str, str], *overrides: str, wait: bool = True
) -> subprocess.CompletedProcess | subprocess.Popen:
    """``train.py -m hydra/launcher=submitit_slurm_cpu ...`` into tmp_path/sweep: the one override a
    cluster without GPUs needs (the partition comes from $SLURM_PARTITION or is `cpu`)."""
    command = [
        sys.executable, str(ROOT / "src" / "train.py"), "-m", "hydra/launcher=submitit_slurm_cpu",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", f"paths.log_dir={tmp_path / 'logs'}", "logger=csv", *overrides,
    ]  # fmt: skip
    if not wait:  # output to a file: a pipe nobody reads while the test waits could fill up
        with open(tmp_path / "sweep.log", "w") as log:
            return subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, text=True
            )
    proc = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def job_metrics(tmp_path: Path, job: int) -> dict:
    return json.loads((tmp_path / "sweep" / str(job) / "metrics.json").read_text())


def task_logs(tmp_path: Path, suffix: str) -> dict[str, str]:
    """Each SLURM task's own log, by the name submitit gives it (<job>_<task>_log.out/err)."""
    logs = sorted((tmp_path / "sweep" / ".submitit").glob(f"*/*_log.{suffix}"))
    return {path.name: path.read_text() for path in logs}


def test_a_two_job_sweep_on_the_cpu_preset_completes_without_sacct_noise(tmp_path, slurm_env, mnist_5k):
    proc = sweep(
        tmp_path, slurm_env, "model=mlp", "data=mnist", f"paths.data_dir={mnist_5k}", *QUIET,
        "trainer.max_epochs=1", "trainer.limit_train_batches=4", "seed=0,1",
    )  # fmt: skip
    jobs = [job_metrics(tmp_path, job) for job in (0, 1)]
    assert [j["status"] for j in jobs] == ["completed", "completed"]
    assert [j["seed"] for j in jobs] == [0, 1] and all(j["global_step"] == 4 for j in jobs)
    assert all(j["threads"] == 1 for j in jobs)  # the preset's cpus_per_task
    # this cluster has no accounting: submitit's sacct watcher would warn on every poll
    output = proc.stdout + proc.stderr + "".join(task_logs(tmp_path, "err").values())
    assert "sacct" not in output, [line for line in output.splitlines() if "sacct" in line][:3]
    submission = next((tmp_path / "sweep" / ".submitit").glob("*/*_submission.sh")).read_text()
    assert "--partition=cpu" in submission and "--gpus-per-node=0" in submission


DDP = ["hydra.launcher.tasks_per_node=2", "trainer=ddp_cpu", "trainer.devices=2"]
EXPERIMENTS = ["seed_mlp_mnist", "seed_perceptron"]  # a classifier, and an experiment that predicts


@pytest.fixture(scope="module")
def ddp_sweep(tmp_path_factory, slurm_env, mnist_5k) -> Path:
    tmp_path = tmp_path_factory.mktemp("ddp")
    sweep(
        tmp_path, slurm_env, f"experiment={','.join(EXPERIMENTS)}", f"paths.data_dir={mnist_5k}", *DDP,
        "trainer.max_epochs=2", "trainer.limit_train_batches=4", "trainer.limit_val_batches=2",
        "fail_on_job_errors=false",  # each job is judged by its own test below
    )  # fmt: skip
    return tmp_path


@pytest.mark.parametrize(
    "experiment",
    [
        "seed_mlp_mnist",
        "seed_perceptron",
    ],
)
def test_b_ddp_through_srun_with_two_tasks(ddp_sweep, experiment):
    job = EXPERIMENTS.index(experiment)
    result = job_metrics(ddp_sweep, job)
    assert result["status"] == "completed", result.get("traceback", result)
    assert result["epochs"] == 2 and result["global_step"] == 8
    if experiment == "seed_perceptron":
        assert len(result["predictions"]) == 1
    else:
        assert result["test"]["test/acc"] > 0.3
    logs = [p for p in (ddp_sweep / "sweep" / ".submitit").glob(f"*_{job}/*_log.out")]
    assert len(logs) == 2  # two SLURM tasks, one process each: srun started the ranks, not Lightning


def scontrol_job(job_id: str, env: dict[str, str]) -> dict[str, str]:
    text = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], env=env, capture_output=True, text=True
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", text))


def test_c_preempted_job_checkpoints_is_requeued_and_resumes_in_its_directory(tmp_path, slurm_env, mnist_5k):
    """Job 0 gets submitit's preemption signal (what SLURM sends before the time limit) mid-epoch;
    job 1 is the same run uninterrupted. Both must end with the same record."""
    marker = tmp_path / "paused"
    proc = sweep(
        tmp_path, slurm_env, "model=mlp", "data=mnist", f"paths.data_dir={mnist_5k}", "seed=0", *QUIET,
        "trainer.max_epochs=2", "trainer.limit_val_batches=2",  # 4 training batches an epoch
        "+callbacks.pause._target_=probes.PauseForSignal", f"+callbacks.pause.marker={marker}",
        "+callbacks.pause.batch=2", "+callbacks.pause.epoch=1,99", wait=False,
    )  # fmt: skip
    try:
        deadline = time.time() + SWEEP_TIMEOUT_S
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "job 0 never reached epoch 1"
        job_id = json.loads(marker.read_text())["job_id"]
        subprocess.run(["scancel", "--signal=USR2", job_id], env=slurm_env, check=True)
        # SLURM holds a requeued job back for two minutes (its EligibleTime); let it start at once
        while proc.poll() is None and time.time() < deadline:
            if scontrol_job(job_id, slurm_env).get("Reason") == "BeginTime":
                subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], env=slurm_env)
            time.sleep(0.3)
        proc.wait(timeout=max(1, deadline - time.time()))
    finally:
        proc.kill()
    controller_log = Path(slurm_env["SLURM_CONF"]).parent / "slurmctld.log"
    assert proc.returncode == 0, (
        (tmp_path / "sweep.log").read_text()[-3000:]
        + "\nslurmctld:\n"
        + "".join(controller_log.read_text().splitlines(keepends=True)[-15:])
    )
    interrupted, uninterrupted = job_metrics(tmp_path, 0), job_metrics(tmp_path, 1)
    for key in ("status", "epochs", "global_step"):
        assert interrupted[key] == uninterrupted[key], key
    assert interrupted["status"] == "completed" and interrupted["global_step"] == 8
    job_dir = tmp_path / "sweep" / "0"
    log = "".join([*task_logs(tmp_path, "err").values(), *task_logs(tmp_path, "out").values()])
    saved = job_dir / "checkpoints" / "interrupted.ckpt"
    assert saved.is_file() and f"Interrupted: saved {saved}" in log
    assert f"litlab: resume: continuing the interrupted job from {saved}" in log
    assert "Requeued job" in log and not list(job_dir.glob("**/hpc_ckpt_*.ckpt"))
    # the same run directory, resumed: one csv log, no second job directory
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.name[0] != ".") == [
        "0",
        "1",
        "multirun.yaml",
    ]


def test_f_two_nodes_one_process_each(tmp_path, slurm_env, mnist_5k):
    """trainer.num_nodes=2 on the cluster's two nodes: SLURM's own variables place the ranks."""
    ranks, prepared = tmp_path / "ranks", tmp_path / "prepared"
    sweep(
        tmp_path, slurm_env, "model=mlp", "data=mnist", f"paths.data_dir={mnist_5k}", *QUIET,
        "data._target_=probes.RecordingMNIST", f"+data.record_dir={prepared}",
        "hydra.launcher.nodes=2", "hydra.launcher.tasks_per_node=1",
        "trainer=ddp_cpu", "trainer.num_nodes=2", "trainer.devices=1",
        "trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=2",
        "+callbacks.ranks._target_=probes.RankProbe", f"+callbacks.ranks.out_dir={ranks}",
    )  # fmt: skip
    places = [json.loads((ranks / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [p["node_rank"] for p in places] == [0, 1] and {p["local_rank"] for p in places} == {0}
    assert all(p["world_size"] == 2 and p["num_nodes"] == 2 for p in places)
    assert len({p["slurm_node"] for p in places}) == 2  # two slurmd, two nodes
    # prepare_data runs on local rank 0 of every node (prepare_data_per_node), here both processes
    assert sorted(p.name for p in prepared.iterdir()) == ["node0-local0-global0", "node1-local0-global1"]
    result = job_metrics(tmp_path, 0)
    assert result["status"] == "completed" and result["global_step"] == 4
    # only global rank 0 writes: the results table that follows metrics.json, in task 0's log only
    outputs = {int(name.split("_")[-2]): text for name, text in task_logs(tmp_path, "out").items()}
    assert sorted(outputs) == [0, 1]
    assert "litlab train results" in outputs[0] and "litlab train results" not in outputs[1]
    checkpoints = sorted(p.name for p in (tmp_path / "sweep" / "0" / "checkpoints").iterdir())
    assert checkpoints == ["epoch_000.ckpt", "last.ckpt"]
