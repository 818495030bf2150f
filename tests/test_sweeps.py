"""Real multiruns of src/train.py on tiny data: failure tolerance, resume, reports and Optuna studies."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from litlab.sweeps.collect import Job, short, swept_keys
from litlab.sweeps.jobs import metric_value, threads_per_job

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "trainer.accelerator=cpu",
    "data.val_size=100",
    "data.batch_size=32",
    "data.download=false",
    "callbacks.rich_progress_bar=null",
]


def multirun(
    tmp_path: Path, *overrides: str, script: str = "train", expect_rc: int = 0
) -> subprocess.CompletedProcess:
    """``expect_rc=1``: some jobs fail, so the sweep (after running them all) exits 1."""
    command = [sys.executable, str(ROOT / "src" / f"{script}.py"), *overrides]
    if script == "train":
        command[2:2] = ["-m", *TINY, f"paths.log_dir={tmp_path / 'logs'}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == expect_rc, (proc.stdout + proc.stderr)[-4000:]
    return proc


def metrics(job_dir: Path) -> dict:
    return json.loads((job_dir / "metrics.json").read_text())


def test_grid_with_failing_jobs_reports_and_resumes(tmp_path, cifar_dir):
    sweep = tmp_path / "sweep"
    grid = [f"paths.data_dir={cifar_dir}", "model=mlp", "trainer.max_epochs=3", f"hydra.sweep.dir={sweep}"]
    grid += ["seed=0,1", "model.activation=relu,bogus"]  # jobs 1 and 3 fail on the unknown activation
    multirun(tmp_path, *grid, expect_rc=1)
    assert [metrics(sweep / str(i))["status"] for i in range(4)] == ["completed", "failed"] * 2
    assert "unknown activation 'bogus'" in metrics(sweep / "1")["error"]

    multirun(tmp_path, str(sweep), script="report")
    table = (sweep / "results.md").read_text()
    relu = next(line for line in table.splitlines() if line.startswith("| relu |")).split(" | ")
    assert relu[1:4] == ["2", "0", "0"] and relu[4].startswith("**")  # 2 seeds, the best arm in bold
    assert float(relu[4].split(" ± ")[0].strip("*")) > 50 and relu[5].startswith("[")  # chance: 10 %; its CI
    assert "| bogus | 0 | 2 | 0 | — | — |" in table and "2 completed, 2 failed" in table
    with (sweep / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["model.activation"], r["seed"], r["status"]) for r in rows][:2] == [
        ("relu", "0", "completed"),
        ("bogus", "0", "failed"),
    ]
    assert (sweep / "results.png").stat().st_size > 1000 and (sweep / "curves.png").stat().st_size > 1000
    assert (sweep / "results.pdf").exists() and (sweep / "results.tex").exists()

    # a lost seed: the report says what is missing
    done_before = (sweep / "0" / "metrics.json").stat().st_mtime_ns
    subprocess.run(["rm", "-rf", str(sweep / "2")], check=True)
    multirun(tmp_path, str(sweep), script="report")
    table = (sweep / "results.md").read_text()
    assert "| relu | 1 | 0 | 1 |" in table and "not started: `model.activation=relu seed=1`" in table

    # resume: the completed job is skipped, the missing and the failed ones run again
    proc = multirun(tmp_path, *grid, "resume=true", expect_rc=1)
    assert f"{sweep / '0'} already completed, skipped" in proc.stderr
    assert (sweep / "0" / "metrics.json").stat().st_mtime_ns == done_before
    assert metrics(sweep / "2")["status"] == "completed" and metrics(sweep / "3")["status"] == "failed"


def test_study_report_gives_paper_outputs(tmp_path, cifar_dir):
    """A finished sweep with a baseline: results.tex (booktabs, best in bold), both CSVs, PDF + PNG figures."""
    sweep = tmp_path / "study"
    grid = [f"paths.data_dir={cifar_dir}", "model=mlp", "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}"]
    multirun(tmp_path, *grid, "seed=0,1", "model.activation=relu,tanh")
    out = tmp_path / "report"
    multirun(tmp_path, str(sweep), "--out", str(out), "--baseline", "model.activation=relu", script="report")

    table = (out / "results.md").read_text()
    assert "| model.activation | n | test/acc (mean ± std) | 95 % CI | Δ vs baseline [95 % CI] |" in table
    assert "failed" not in table.split("| model.activation")[1]  # every job completed: no empty columns
    assert "| relu | 2 |" in table and "| baseline |" in table and "paired t-test" in table
    assert str(cifar_dir) not in table and "paths.data_dir=<data>" in table
    assert table.count("**") == 2 and "Power:" in table

    tex = (out / "results.tex").read_text()
    rules = [tex.index(rule) for rule in (r"\toprule", r"\midrule", r"\bottomrule")]
    assert rules == sorted(rules) and r"\begin{tabular}{lrrrrr" in tex
    assert tex.count(r"\bfseries") == 1 and r"$\pm$" in tex and r"$\Delta$" in tex
    assert r"model.activation & n & test/acc (mean $\pm$ std) & 95 \% CI" in tex
    assert len([line for line in tex.splitlines() if line.endswith(r"\\")]) == 3  # header + 2 arms

    with (out / "results.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    assert len(runs) == 4 and {"seed", "overrides", "test/acc", "val/acc_best", "train/loss"} <= set(runs[0])
    assert all("paths.data_dir=<data>" in r["overrides"] and float(r["test/acc"]) > 0 for r in runs)
    with (out / "summary.csv").open() as handle:
        arms = list(csv.DictReader(handle))
    assert [a["model.activation"] for a in arms] == ["relu", "tanh"] and arms[0]["baseline"] == "True"
    assert arms[1]["test"] == "paired" and float(arms[1]["ci_low"]) <= float(arms[1]["mean"])
    for figure in ("results", "curves"):
        assert (out / f"{figure}.png").stat().st_size > 5000
        assert (out / f"{figure}.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.heavy
def test_optuna_study_survives_failures_and_resumes(tmp_path, mnist_dir):
    optuna = pytest.importorskip("optuna")
    sweep = tmp_path / "study"
    search = [
        "hparams_search=mlp_mnist",
        f"paths.data_dir={mnist_dir}",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweeper.sampler=random",
        "hydra.sweeper.seed=6",  # asks relu, bogus, relu
        "model.activation=choice(relu,bogus)",  # bogus trials fail; the study must go on
    ]
    multirun(tmp_path, *search, "hydra.sweeper.n_trials=3", expect_rc=1)
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    study = optuna.load_study(study_name="mlp_mnist", storage=storage)
    states = [t.state.name for t in study.trials]
    assert len(states) == 3 and {"COMPLETE", "FAIL"} <= set(states), states
    for trial in study.trials:
        job = metrics(sweep / str(trial.user_attrs["job"]))
        assert job["status"] == ("completed" if trial.state.name == "COMPLETE" else "failed")
        if job["status"] == "completed":
            assert trial.value == pytest.approx(job["final"]["val/acc_best"])

    study.ask()  # a trial left RUNNING, as by a killed search: it is closed and asked again
    multirun(tmp_path, *search, "hydra.sweeper.n_trials=4", expect_rc=1)
    study = optuna.load_study(study_name="mlp_mnist", storage=storage)
    assert len(study.trials) == 5 and study.trials[3].state.name == "FAIL"
    assert study.trials[4].user_attrs["job"] == 4 and (sweep / "4" / "metrics.json").exists()
    # the sampler's seed advanced by the trials done: the first trial after the resume is a new point
    assert study.trials[4].params != study.trials[0].params
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0", "1", "2", "4"]


def test_optuna_prunes_bad_trials_before_their_last_epoch(tmp_path, mnist_dir):
    optuna = pytest.importorskip("optuna")
    sweep = tmp_path / "pruned"
    search = [
        "hparams_search=mlp_mnist",
        f"paths.data_dir={mnist_dir}",
        "trainer.max_epochs=3",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweeper.sampler=random",
        "hydra.sweeper.seed=4",  # asks lr 0.01 first (it sets the median), then lr 0
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.pruner_kwargs.n_startup_trials=1",
        "hydra.sweeper.pruner_kwargs.n_warmup_steps=0",
        "model.optimizer.lr=choice(0.01,0.0)",  # lr 0 never learns: below the median from epoch 1 on
    ]
    multirun(tmp_path, *search)
    study = optuna.load_study(study_name="mlp_mnist", storage=f"sqlite:///{sweep / 'optuna.db'}")
    trials = study.trials
    print([(t.number, t.state.name, t.params["model.optimizer.lr"], t.last_step) for t in trials])
    assert trials[0].state.name == "COMPLETE" and trials[0].params["model.optimizer.lr"] == 0.01
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and all(t.params["model.optimizer.lr"] == 0.0 for t in pruned)
    for trial in pruned:
        assert trial.last_step < 2  # epochs 0..2: stopped before the last one
        job = metrics(sweep / str(trial.user_attrs["job"]))
        assert job["status"] == "pruned" and job["error"].startswith("TrialPruned")
    assert all(len(t.intermediate_values) == 3 for t in trials if t.state.name == "COMPLETE")
    assert (sweep / "optimization_history.png").stat().st_size > 5000

    # killed mid-trial (a trial left RUNNING), then resumed: pruned trials count as done, 2 more run;
    # the resumed sampler asks new points (its seed advanced), run unpruned here to be complete
    study.ask()
    multirun(tmp_path, *search[:-4], "hydra.sweeper.n_trials=6", *search[-3:], "hydra.sweeper.pruner=none")
    study = optuna.load_study(study_name="mlp_mnist", storage=f"sqlite:///{sweep / 'optuna.db'}")
    states = [t.state.name for t in study.trials]
    assert len(states) == 7 and states[4] == "FAIL" and states[:4] == [t.state.name for t in trials]
    assert states.count("COMPLETE") >= 2  # enough for parameter importances
    for plot in ("optimization_history", "param_importances"):
        assert (sweep / f"{plot}.png").stat().st_size > 5000


def test_threads_and_objective_rules():
    assert threads_per_job(3) == 3 and threads_per_job(None) is None  # outside a parallel multirun
    completed = {"status": "completed", "final": {"val/acc_best": 0.9}, "test": {"test/acc": 0.8}}
    assert metric_value(completed, "val/acc_best") == 0.9 and metric_value(completed, "test/acc") == 0.8
    assert metric_value({"status": "failed"}, "val/acc_best") != metric_value(
        {"status": "failed"}, "x"
    )  # NaN


def test_swept_keys_ignore_bookkeeping_and_floats_are_short():
    jobs = [
        Job(("model=mlp", "seed=0", "resume=true"), "completed"),
        Job(("model=cnn", "seed=1"), "completed"),
    ]
    assert swept_keys(jobs) == ["model", "seed"]
    assert short("0.000123456789") == "0.0001235" and short("128") == "128" and short("relu") == "relu"


@pytest.mark.slow
def test_joblib_runs_jobs_side_by_side_with_a_share_of_the_cores(tmp_path, cifar_dir):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "joblib"
    overrides = [
        f"paths.data_dir={cifar_dir}",
        "model=mlp",
        "trainer.max_epochs=2",
        f"hydra.sweep.dir={sweep}",
    ]
    multirun(tmp_path, *overrides, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2,3")
    jobs = [metrics(sweep / str(i)) for i in range(4)]
    cpus = len(os.sched_getaffinity(0))
    assert all(j["status"] == "completed" and j["test"]["test/acc"] > 0.5 for j in jobs)
    assert {j["threads"] for j in jobs} == {max(1, cpus // min(2, cpus))}


@pytest.mark.slow
def test_submitit_local_launcher_really_runs_jobs(tmp_path, cifar_dir):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "submitit"
    overrides = [
        f"paths.data_dir={cifar_dir}",
        "model=mlp",
        "trainer.max_epochs=2",
        f"hydra.sweep.dir={sweep}",
    ]
    multirun(
        tmp_path,
        *overrides,
        "hydra/launcher=submitit_local",
        "seed=0,1",
        "model.activation=relu,bogus",
        expect_rc=1,
    )
    statuses = [metrics(sweep / str(i))["status"] for i in range(4)]
    assert statuses == ["completed", "failed"] * 2 and (sweep / ".submitit").is_dir()


@pytest.mark.parametrize(
    "grid",
    [
        {"model.optimizer.lr": ["0.001", "0.01", "0.1"]},  # numeric: a line with error bars (log x)
        {
            "model.activation": ["relu", "tanh", "gelu"],
            "model.hidden_sizes": ["[8]", "[8,8]"],
        },  # grouped bars
        {"experiment": ["a", "b"]},  # categorical: bars
    ],
)
def test_metric_plot_for_each_kind_of_sweep(tmp_path, grid):
    from litlab.sweeps.collect import group_jobs
    from litlab.sweeps.plots import plot_metric

    keys = list(grid)
    combos = [{}]
    for key, values in grid.items():
        combos = [{**c, key: v} for c in combos for v in values]
    jobs = [
        Job(
            tuple(f"{k}={v}" for k, v in {**c, "seed": str(s)}.items()),
            "completed",
            metrics={"test/acc": 0.5 + s / 10},
        )
        for c in combos
        for s in range(2)
    ]
    groups = group_jobs(jobs, keys)
    assert len(groups) == len(combos) and groups[0].mean_std("test/acc") == pytest.approx(
        (0.55, 0.0707), abs=1e-3
    )
    assert (
        plot_metric(tmp_path / "plot.png", groups, keys, "test/acc")
        and (tmp_path / "plot.png").stat().st_size > 5000
    )


@pytest.mark.parametrize("opt_out", [False, True])
def test_multirun_with_a_failed_job_exits_non_zero_after_the_others(tmp_path, opt_out):
    sweep = tmp_path / "sweep"
    overrides = ["data=toy", "model=perceptron", "logger=none", "trainer.max_epochs=1", "test=false"]
    overrides += [f"hydra.sweep.dir={sweep}", f"paths.log_dir={tmp_path / 'logs'}"]
    overrides += ["model.optimizer.lr=1.0,abc,0.5"]  # job 1: a bad value
    overrides += ["fail_on_job_errors=false"] if opt_out else []
    command = [sys.executable, str(ROOT / "src" / "train.py"), "-m", *overrides, "trainer.accelerator=cpu"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == (0 if opt_out else 1), proc.stderr[-4000:]
    assert [metrics(sweep / str(i))["status"] for i in range(3)] == ["completed", "failed", "completed"]
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith("litlab: 1 of 3 jobs failed (1); errors in ") and str(sweep) in summary


def test_squeue_watcher_reads_job_states_and_ends_jobs_slurm_forgot(monkeypatch):
    """On a cluster without accounting the SLURM launcher watches jobs with squeue: its lines parse as
    sacct's did, and a job gone from the queue (forgotten MinJobAge after it ended) counts as done,
    once its ended state has held for the grace period (a requeued job passes through one)."""
    pytest.importorskip("submitit")
    from litlab.sweeps import slurm
    from litlab.sweeps.slurm import LEFT_QUEUE, QueueWatcher

    clock = [1000.0]
    monkeypatch.setattr(slurm.time, "monotonic", lambda: clock[0])
    watcher = QueueWatcher(delay_s=600)
    for job in ("7_0", "7_1", "9"):
        watcher.register_job(job)
    assert watcher._make_command()[:2] == ["squeue", "--noheader"]

    def poll(text: bytes, after_s: float) -> list[tuple[str, bool]]:
        clock[0] += after_s
        watcher._info_dict.update(watcher.read_info(text))
        return [(watcher.get_state(j, mode="cache"), watcher.is_done(j, mode="cache")) for j in jobs]

    jobs = ("7_0", "7_1", "9")
    # first sight of an ended state: not yet believed
    assert poll(b"7_0|FAILED|vm\n7_1|COMPLETED|localhost\n", 0) == [
        ("FAILED", False),
        ("COMPLETED", False),
        (LEFT_QUEUE, False),
    ]
    # 7_0 was being requeued: back in the queue, its ended state forgotten
    assert poll(b"7_0|PENDING|\n7_1|COMPLETED|localhost\n", 5)[0] == ("PENDING", False)
    assert poll(b"7_0|RUNNING|vm\n7_1|COMPLETED|localhost\n", slurm.ENDED_GRACE_S) == [
        ("RUNNING", False),
        ("COMPLETED", True),
        (LEFT_QUEUE, True),
    ]
    # 7_0 ends for real: done once the grace has passed since it was first seen ended
    assert poll(b"7_0|FAILED|vm\n", 1)[0] == ("FAILED", False)
    assert poll(b"", slurm.ENDED_GRACE_S)[0] == (LEFT_QUEUE, True)
