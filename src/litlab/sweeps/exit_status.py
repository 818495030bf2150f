"""A multirun whose jobs failed exits non-zero, so a script or CI notices.

Each job's failure is caught and recorded in its ``metrics.json`` so the sweep goes on; Hydra then
exits 0 whatever happened. This Hydra callback runs once after the last job, counts the sweep's job
folders whose ``metrics.json`` is neither ``completed`` nor ``pruned`` (any launcher: it reads the files, not
in-process state), prints one summary line and exits 1. ``fail_on_job_errors=false`` opts out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def job_statuses(sweep_dir: Path) -> dict[str, str]:
    """Each job folder of the sweep (one with Hydra's ``.hydra``) and its metrics.json status."""
    statuses = {}
    for job in (
        sorted(p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()) if sweep_dir.is_dir() else []
    ):
        try:
            statuses[job.name] = json.loads((job / "metrics.json").read_text()).get("status", "unknown")
        except (OSError, ValueError):
            statuses[job.name] = "no metrics.json"
    return statuses


class FailedJobsExit(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        statuses = job_statuses(sweep_dir)
        # a pruned Optuna trial stopped early on purpose: not a failure
        failed = sorted(
            (name for name, status in statuses.items() if status not in ("completed", "pruned")),
            key=_job_order,
        )
        if not failed:
            return
        print(
            f"litlab: {len(failed)} of {len(statuses)} jobs failed ({', '.join(failed)}); errors in "
            f"{sweep_dir}/<job>/metrics.json, table: python src/report.py {sweep_dir}",
            file=sys.stderr,
        )
        if config.get("fail_on_job_errors", True):
            sys.exit(1)


def _job_order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (sys.maxsize, name)
