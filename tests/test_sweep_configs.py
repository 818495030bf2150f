"""Every sweep config composes: launchers, the Optuna sweeper, hparams searches and every arm of every study."""

from __future__ import annotations

import importlib

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from litlab.utils.config import build
from test_configs import build_model, composed, options

DATA_SHAPES = {"cifar10": ((3, 32, 32), 10), "mnist": ((1, 28, 28), 10)}


def target_class(path: str) -> type:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("name", options("hydra/launcher"))
def test_every_launcher_config_names_an_installed_plugin(tmp_path, name):
    cfg = composed(tmp_path, f"hydra/launcher={name}")
    pytest.importorskip(
        cfg.hydra.launcher._target_.rsplit(".", 1)[0], reason="pip install -e . (pyproject deps)"
    )
    assert target_class(cfg.hydra.launcher._target_).__name__.endswith("Launcher")
    if name == "submitit_slurm":  # sensible cluster defaults: a GPU per job, a time limit, requeue
        launcher = cfg.hydra.launcher
        assert launcher.gpus_per_node == 1 and launcher.timeout_min >= 60 and launcher.max_num_timeout >= 1


def test_optuna_sweeper_config_instantiates(tmp_path):
    cfg = composed(tmp_path, "hydra/sweeper=optuna")
    kwargs = {k: v for k, v in cfg.hydra.sweeper.items() if k != "_target_"}
    sweeper = target_class(cfg.hydra.sweeper._target_)(**kwargs)
    assert sweeper.storage.startswith("sqlite:///") and sweeper.storage.endswith("/optuna.db")


@pytest.mark.parametrize("name", options("hparams_search"))
def test_every_hparams_search_builds_and_has_a_valid_space(tmp_path, name):
    pytest.importorskip("optuna")
    cfg = composed(tmp_path, f"hparams_search={name}")
    sweeper = target_class(cfg.hydra.sweeper._target_)(
        **{k: v for k, v in cfg.hydra.sweeper.items() if k != "_target_"}
    )
    space, _ = sweeper.search_space([])
    assert space and cfg.optimized_metric == "val/acc_best" and sweeper.storage.startswith("sqlite")
    assert build_model(cfg, DATA_SHAPES[cfg.data._target_.split(".")[-2]]) is not None


@pytest.mark.parametrize("name", options("ablation"))
def test_every_arm_of_every_study_builds(tmp_path, name):
    """Each configuration of the study's grid (seeds aside) composes and builds its model and trainer."""
    cfg = composed(tmp_path, f"ablation={name}")
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items() if k != "seed"]
    jobs = [
        job
        for batch in BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)
        for job in batch
    ]
    assert len(jobs) >= 2
    for job in jobs:
        arm = composed(tmp_path, f"ablation={name}", *job)
        model = build_model(arm, DATA_SHAPES[arm.data._target_.split(".")[-2]])
        assert model.optimizer_factory(params=model.parameters()) and build(
            arm.trainer, "trainer", logger=False
        )


@pytest.mark.parametrize("name", options("ablation"))
def test_every_study_names_one_of_its_arms_as_baseline(tmp_path, name):
    """The report compares every arm with the study's baseline: it must be a value the sweep runs."""
    from litlab.sweeps.summary import parse_baseline

    cfg = composed(tmp_path, f"ablation={name}")
    baseline = parse_baseline(cfg.get("baseline"))
    assert baseline, f"conf/ablation/{name}.yaml names no baseline"
    for key, value in baseline.items():
        swept = OverridesParser.create().parse_overrides([f"{key}={cfg.hydra.sweeper.params[key]}"])[0]
        assert value in [str(v) for v in swept.sweep_string_iterator()], (key, value)
