"""Watching SLURM jobs with squeue when sacct cannot answer (litlab's ``submitit_slurm`` launcher).

submitit's sweep process learns a job's state from ``sacct`` (``SlurmInfoWatcher``), which needs
SLURM's accounting database. On a cluster without one (``AccountingStorageType=accounting_storage/none``,
as on small clusters and the one ``scripts/slurm_cluster.sh`` starts) every poll fails with a
"Bypassing sacct error" warning: a flood in the sweep's log, and a job that dies without writing its
result (OOM, node failure, scancel) is never seen to end, so the sweep waits forever. Here, on such a
cluster, the jobs are watched with ``squeue``, which every cluster has; a job that left the queue
(SLURM forgets a finished job ``MinJobAge`` seconds after it ends) counts as ended.

A requeued job (preemption, time limit) can pass through an ended state on its way back to PENDING,
and submitit never looks at a job again once it has seen it end: so an ended state counts only once
it has held for ``ENDED_GRACE_S``. A job that wrote its result is done at once (submitit checks that
file first), so the grace only delays noticing a job that died without one.
"""

from __future__ import annotations

import getpass
import subprocess
import time

from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

LEFT_QUEUE = "LEFT_QUEUE"  # not a SLURM state: the job ended and SLURM already forgot it
ENDED_GRACE_S = 30.0


class QueueWatcher(SlurmInfoWatcher):
    """submitit's watcher, asking ``squeue`` (one call for all of the user's jobs) instead of ``sacct``."""

    def __init__(self, delay_s: int = 60) -> None:
        super().__init__(delay_s=delay_s)
        self._ended_at: dict[str, float] = {}  # job id -> when it was first seen in an ended state

    def _make_command(self) -> list[str] | None:
        if not self._registered - self._finished:
            return None
        # --user rather than -j: squeue -j fails outright when the only job asked for is forgotten
        return ["squeue", "--noheader", "--array", "--states=all", f"--user={getpass.getuser()}",
                "--format=%i|%T|%N"]  # fmt: skip

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        text = string.decode() if isinstance(string, bytes) else string
        info = super().read_info("JobID|State|NodeList\n" + text)  # sacct's --parsable2 layout
        for job_id in self._registered - self._finished - set(info):
            info[job_id] = {"JobID": job_id, "State": LEFT_QUEUE, "NodeList": ""}
        return info

    def is_done(self, job_id: str, mode: str = "standard") -> bool:
        """submitit's answer, believed once it has said "ended" for ``ENDED_GRACE_S`` (see the module)."""
        if not super().is_done(job_id, mode=mode):
            self._ended_at.pop(job_id, None)  # back in the queue: a requeue, not an end
            return False
        now = time.monotonic()
        return now - self._ended_at.setdefault(job_id, now) >= ENDED_GRACE_S


def accounting_enabled() -> bool:
    """Whether sacct can answer: the controller's AccountingStorageType is not ``accounting_storage/none``."""
    try:
        config = subprocess.run(
            ["scontrol", "show", "config"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return True  # no answer: leave submitit's default alone
    storage = next((line.split("=", 1)[1].strip() for line in config.splitlines()
                    if line.startswith("AccountingStorageType")), "")  # fmt: skip
    return storage != "accounting_storage/none"


def watch_with_squeue_without_accounting() -> None:
    """The one place litlab changes submitit: its class-wide job watcher, on clusters without sacct."""
    if not isinstance(SlurmJob.watcher, QueueWatcher) and not accounting_enabled():
        SlurmJob.watcher = QueueWatcher(delay_s=SlurmJob.watcher._delay_s)
