"""Read a sweep dir back: every job's overrides and metrics.json, and the jobs the sweep should have run.

A job dir is any folder holding ``.hydra/overrides.yaml`` or ``metrics.json``. The expected jobs come
from ``multirun.yaml`` (Hydra's basic sweeper grid), so a job that never started is reported missing
too; an Optuna sweep has no fixed grid, so there only started-but-unfinished jobs are missing.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from litlab.errors import DataError

SEED_KEY = "seed"
FOLD_KEY = "data.fold"
# Jobs that differ only in these are replicates of one configuration: seeds, and k-fold folds
REPLICATE_KEYS = (SEED_KEY, FOLD_KEY)
BOOKKEEPING = {"resume", "threads", "paths.log_dir", "hydra/launcher", "hydra/sweeper"}


@dataclass
class Job:
    overrides: tuple[str, ...]
    status: str  # completed | failed | unfinished (dir, no metrics.json) | not started
    path: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    commit: str | None = None  # the git commit its provenance.json names, "+dirty" when the tree was

    @property
    def params(self) -> dict[str, str]:
        """The overrides as key -> value, without bookkeeping keys that do not change the result."""
        pairs = (o.lstrip("+~").split("=", 1) for o in self.overrides if "=" in o)
        return {k: v for k, v in pairs if k not in BOOKKEEPING and not k.startswith("hydra.")}


def flat_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The numbers a report shows; ``gap`` is final train accuracy minus test accuracy."""
    metrics = {**result.get("final", {}), **result.get("test", {})}
    metrics = {k: float(v) for k, v in metrics.items() if k.split("/")[0] in ("train", "val", "test")}
    if "train/acc" in metrics and "test/acc" in metrics:
        metrics["gap"] = metrics["train/acc"] - metrics["test/acc"]
    for key in ("wall_time_s", "epochs"):
        if isinstance(result.get(key), int | float):
            metrics[key] = float(result[key])
    return metrics


def public(key: str, value: str) -> str:
    """An override as a committed report may show it: no machine's paths (``paths.data_dir=<data>``,
    any other absolute or home path ``<path>``), which say nothing about the result and leak a layout."""
    if key == "paths.data_dir":
        return f"{key}=<data>"
    if value.strip("'\"").startswith(("/", "~")) or (len(value) > 2 and value[1:3] in (":\\", ":/")):
        return f"{key}=<path>"
    return f"{key}={value}"


def short(value: str) -> str:
    """Optuna's float parameters to 4 significant digits; everything else as given."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if value.lstrip("-").isdigit() else f"{number:.4g}"


def read_job(path: Path) -> Job:
    overrides_file = path / ".hydra" / "overrides.yaml"
    result: dict[str, Any] = {}
    if (path / "metrics.json").exists():
        try:
            result = json.loads((path / "metrics.json").read_text())
        except json.JSONDecodeError:
            result = {"status": "failed", "error": "metrics.json is corrupt"}
    if overrides_file.exists():
        overrides = tuple(str(o) for o in OmegaConf.load(overrides_file))
    else:
        overrides = tuple(result.get("overrides", ()))
    status = result.get("status", "unfinished")
    return Job(
        overrides,
        status,
        path,
        flat_metrics(result) if status == "completed" else {},
        result.get("error", ""),
        job_commit(path),
    )


def job_commit(path: Path) -> str | None:
    try:
        git = json.loads((path / "provenance.json").read_text()).get("git") or {}
    except (OSError, json.JSONDecodeError):
        return None
    commit = git.get("commit")
    return f"{commit[:10]}{'+dirty' if git.get('dirty') else ''}" if commit else None


def mixed_commits(jobs: list[Job]) -> str | None:
    """One warning line when the completed jobs of a table ran different code; None when they agree."""
    counts: dict[str, int] = {}
    for job in jobs:
        if job.status == "completed" and job.commit:
            counts[job.commit] = counts.get(job.commit, 0) + 1
    if len(counts) < 2:
        return None
    listed = ", ".join(f"{commit} ({n} jobs)" for commit, n in sorted(counts.items(), key=lambda c: -c[1]))
    return f"warning: the runs of this table came from {len(counts)} commits: {listed}"


def expected_overrides(sweep_dir: Path) -> list[tuple[str, ...]] | None:
    """The job list Hydra's basic sweeper makes from multirun.yaml; None for other sweepers."""
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return None
    cfg = OmegaConf.load(path)
    sweeper = OmegaConf.select(cfg, "hydra.sweeper", default=None)
    if sweeper is None or not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    lines = params + [str(o) for o in OmegaConf.select(cfg, "hydra.overrides.task", default=[])]
    batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(lines), None)
    return [tuple(job) for batch in batches for job in batch]


def load_sweep(sweep_dir: Path) -> list[Job]:
    if not sweep_dir.is_dir():
        raise DataError(f"sweep dir {sweep_dir} does not exist; pass the hydra.sweep.dir of a multirun")
    found = [
        read_job(p.parent if p.name == "metrics.json" else p.parent.parent)
        for p in sorted(sweep_dir.rglob("*"))
        if p.name == "metrics.json" or p.as_posix().endswith(".hydra/overrides.yaml")
    ]
    unique = {job.path: job for job in found}
    jobs = sorted(unique.values(), key=lambda j: (len(j.path.name), j.path.name))
    if not jobs and not (sweep_dir / "multirun.yaml").exists():
        raise DataError(f"no jobs in {sweep_dir}: it holds no metrics.json or .hydra/overrides.yaml")
    expected = expected_overrides(sweep_dir) or []
    seen = {tuple(sorted(job.params.items())) for job in jobs}
    jobs += [
        job for o in expected if tuple(sorted((job := Job(o, "not started")).params.items())) not in seen
    ]
    return jobs


def swept_keys(jobs: list[Job]) -> list[str]:
    """Override keys whose value differs between jobs (or that only some jobs set), in first-seen order."""
    values: dict[str, list[str]] = {}
    for job in jobs:
        for key, value in job.params.items():
            values.setdefault(key, []).append(value)
    return [k for k, v in values.items() if len(set(v)) > 1 or len(v) < len(jobs)]


def replicate_id(job: Job, default: str) -> str:
    """Which replicate a job is (its seed and fold), so arms pair up on the same seed and fold."""
    params = job.params
    return ",".join(f"{k}={params[k]}" for k in REPLICATE_KEYS if k in params) or default


@dataclass
class Group:
    """One configuration: the jobs that differ only in their seed or fold (``REPLICATE_KEYS``)."""

    params: dict[str, str]
    jobs: list[Job]

    def count(self, *statuses: str) -> int:
        return sum(job.status in statuses for job in self.jobs)

    def values(self, metric: str) -> list[float]:
        return [j.metrics[metric] for j in self.jobs if j.status == "completed" and metric in j.metrics]

    def mean_std(self, metric: str) -> tuple[float, float]:
        values = self.values(metric)
        if not values:
            return math.nan, math.nan
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def group_jobs(jobs: list[Job], keys: list[str]) -> list[Group]:
    groups: dict[tuple[str, ...], Group] = {}
    for job in jobs:
        params = {k: job.params.get(k, "-") for k in keys}
        groups.setdefault(tuple(params.values()), Group(params, [])).jobs.append(job)
    return list(groups.values())
