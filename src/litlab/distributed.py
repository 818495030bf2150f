"""Distributed training that works under Hydra, including multirun.

Lightning's DDP launcher starts ranks 1..N-1 by re-running the original command line. Under
``-m`` that command is the whole sweep, so every extra rank would replay every job. Here the
extra ranks are started from the job's own composed config (``<job dir>/.hydra/config.yaml``)
with the job's directory as their run dir: each job runs exactly once, its ranks share its
directory, and nothing is created twice.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from litlab.errors import ConfigError


def job_subprocess_command(local_rank: int) -> tuple[Sequence[str], str]:
    """Command and cwd for one extra rank of the current Hydra job (single run or multirun job)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd, to_absolute_path

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    saved = job_dir / (hydra_cfg.output_subdir or ".hydra")
    if not (saved / "config.yaml").exists():
        raise ConfigError(f"DDP needs the job's saved config in {saved}; do not set hydra.output_subdir=null")
    command = [
        sys.executable,
        to_absolute_path(sys.argv[0]),
        f"--config-path={saved}",
        "--config-name=config",
        f"hydra.run.dir={job_dir}",
        "hydra.output_subdir=null",
        f"hydra.job.name={hydra_cfg.job.name}_rank{local_rank}",
    ]
    return command, get_original_cwd()


def install_hydra_relaunch() -> None:
    """Make Lightning's script launcher start extra ranks with ``job_subprocess_command``, and watch
    them with ``litlab.ranks.watch_ranks`` (a failed rank is recorded, not a SIGKILL of the sweep)."""
    from lightning.pytorch.strategies.launchers import subprocess_script

    from litlab.ranks import watch_ranks

    subprocess_script._hydra_subprocess_cmd = job_subprocess_command
    subprocess_script._launch_process_observer = watch_ranks


def ddp_strategy(model: object, strategy: object) -> object:
    """``trainer.strategy=ddp`` with unused-parameter detection for a model that needs it.

    A model whose backward leaves some parameters without a gradient on purpose (the GAN steps G
    and D in turn; gradual unfreezing trains more of the backbone each milestone) says so with
    ``ddp_find_unused_parameters``; every other model keeps DDP's faster default."""
    if strategy == "ddp" and getattr(model, "ddp_find_unused_parameters", False):
        return "ddp_find_unused_parameters_true"
    return strategy


def per_device_batch_size(global_batch_size: int, world_size: int) -> int:
    """``data.batch_size`` is global: each of the ``world_size`` processes gets an equal share."""
    if global_batch_size % world_size:
        raise ConfigError(
            f"data.batch_size={global_batch_size} is the global batch and must divide evenly over {world_size} "
            f"processes; use a multiple of {world_size}"
        )
    return global_batch_size // world_size


LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "PL_GLOBAL_SEED")


@contextmanager
def isolated_job() -> Iterator[None]:
    """Leave no distributed state behind for the next job of a multirun in this process.

    Lightning's launcher exports ``LOCAL_RANK``, ``MASTER_PORT`` and friends into the parent's
    environment and keeps the process group. The next job would take those as "launched
    externally", never start its own ranks, and hang or crash on a stale rendezvous. The job's
    ranks are waited for (or terminated) here, so none outlives its job.
    """
    from litlab.ranks import end_ranks

    saved = {key: os.environ.get(key) for key in LAUNCHER_ENV}
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()  # first: a rank blocked in a collective then fails and exits
        end_ranks()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
