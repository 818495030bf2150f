"""Watching SLURM jobs with squeue when sacct cannot answer (litlab's ``submitit_slurm`` launcher).

submitit's sweep process learns a job's state from ``sacct`` (``SlurmInfoWatcher``), which needs
SLURM's accounting database. On a cluster without one (``AccountingStorageType=accounting_storage/none``,
as on small clusters and the one ``scripts/slurm_cluster.sh`` starts) every poll fails with a
"Bypassing sacct error" warning: a flood in the sweep's log, and a job that dies without writing its
result (OOM, node failure, scancel) is never seen to end, so the sweep waits forever. Here, on such a
cluster, the jobs are watched with ``squeue``, which every cluster has; a job that left the queue
(SLURM forgets a finished job ``MinJobAge`` seconds after it ends) counts as ended.
"""

from __future__ import annotations

import getpass
import subprocess

from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

LEFT_QUEUE = "LEFT_QUEUE"  # not a SLURM state: the job ended and SLURM already forgot it


class QueueWatcher(SlurmInfoWatcher):
    """submitit's watcher, asking ``squeue`` (one call for all of the user's jobs) instead of ``sacct``."""

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
