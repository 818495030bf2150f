"""A run's identity in the trackers, derived from its run directory so that it survives a restart.

- ``id``: a short hash of the run directory a run *started* in. A run resumed from a checkpoint of
  another run directory takes that run's id (read from its ``provenance.json``), so ``ckpt_path=
  .../last.ckpt``, ``resume=true`` from ``interrupted.ckpt`` and a SLURM requeue all continue the same
  W&B run (``resume="allow"`` in conf/logger/wandb.yaml).
- ``group``: the sweep's name for ``-m`` jobs (an Optuna study's name, else the sweep dir's name), the
  run directory's name otherwise.
- ``name``: the overrides that define the run, machine paths and bookkeeping keys left out.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from litlab.tracking import provenance

# overrides that say where or how a run ran, not what it is
NOT_IN_NAME = ("paths.", "hydra.", "ckpt_path", "resume", "threads", "logger", "trainer.accelerator")


@dataclass(frozen=True)
class RunIdentity:
    id: str
    group: str
    name: str


def run_hash(run_dir: Path) -> str:
    return hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12]


def origin_dir(output_dir: Path, ckpt_path: Any) -> Path:
    """The run directory a checkpoint in ``<run>/checkpoints/`` came from; ``output_dir`` otherwise."""
    if not ckpt_path or "://" in str(ckpt_path):
        return output_dir
    path = Path(str(ckpt_path)).expanduser()
    return path.parent.parent if path.parent.name == "checkpoints" and path.is_file() else output_dir


def run_id(output_dir: Path, ckpt_path: Any) -> tuple[str, Path]:
    origin = origin_dir(output_dir, ckpt_path)
    recorded = (provenance.read(origin) or {}).get("run_id") if origin != output_dir else None
    return (recorded or run_hash(origin)), origin


def sweep_group() -> str | None:
    if not HydraConfig.initialized() or HydraConfig.get().mode.name != "MULTIRUN":
        return None
    hydra_cfg = HydraConfig.get()
    study = hydra_cfg.sweeper.get("study_name")
    return str(study) if study else Path(hydra_cfg.sweep.dir).name


def run_name(overrides: list[str], fallback: str) -> str:
    kept = [o for o in overrides if not o.lstrip("+~").startswith(NOT_IN_NAME)]
    return " ".join(kept) or fallback


def identify(cfg: DictConfig, output_dir: Path, overrides: list[str]) -> RunIdentity:
    train = cfg.get("train", True) and cfg.get("task_name") == "train"
    the_id, origin = run_id(output_dir, cfg.get("ckpt_path") if train else None)
    return RunIdentity(the_id, sweep_group() or origin.name, run_name(overrides, output_dir.name))


def configure_loggers(cfg: DictConfig, identity: RunIdentity) -> None:
    """Fill the W&B and MLflow identity fields the config leaves null; an offline ``log_model`` becomes
    a one-line notice (Lightning raises: nothing can be uploaded offline)."""
    loggers = cfg.get("logger") or {}
    with open_dict(cfg):
        for node in loggers.values():
            target = str(node.get("_target_", "")) if isinstance(node, DictConfig) else ""
            if target.endswith("WandbLogger"):
                for key in ("id", "group", "name"):
                    if node.get(key) in (None, ""):
                        node[key] = getattr(identity, key)
                if node.get("log_model") and node.get("offline"):
                    print(
                        "litlab: logger.wandb.log_model: W&B is offline, so no checkpoint is uploaded; "
                        "the checkpoints stay in checkpoints/ (set WANDB_API_KEY or `wandb login` to upload)",
                        file=sys.stderr,
                    )
                    node.log_model = False
            elif target.endswith("MLFlowLogger") and node.get("run_name") in (None, ""):
                node.run_name = identity.name
