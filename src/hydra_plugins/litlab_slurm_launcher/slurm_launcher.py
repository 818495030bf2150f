"""Hydra's submitit SLURM launcher, watching its jobs with squeue on a cluster without accounting.

A subclass here, not in ``litlab``: Hydra instantiates launchers only from the ``hydra_plugins``
package. submitit is imported when a sweep launches, not at every start (Hydra imports this module
whenever it scans its plugins).
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as HydraSlurmLauncher


class SlurmLauncher(HydraSlurmLauncher):
    """Hydra's ``submitit_slurm`` launcher (same options); see ``litlab.sweeps.slurm`` for the watcher."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from litlab.sweeps.slurm import watch_with_squeue_without_accounting

        watch_with_squeue_without_accounting()
        return super().launch(job_overrides, initial_job_idx)
