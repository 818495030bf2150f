"""Every config file in conf/ composes and instantiates, with every key a real constructor argument."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from litlab.errors import ConfigError
from litlab.utils.config import build, build_all

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def composed(tmp_path: Path, *overrides: str, config: str = "train"):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config, overrides=[*overrides, f"paths.data_dir={tmp_path}"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "out")
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


def build_model(cfg, data_shape=((3, 32, 32), 10)):
    shape, classes = data_shape
    return build(cfg.model, "model", num_classes=classes, input_shape=list(shape))


@pytest.mark.parametrize("name", options("model"))
def test_every_model_config_builds_and_makes_an_optimizer(tmp_path, name):
    cfg = composed(tmp_path, f"model={name}")
    model = build_model(cfg)
    optimizer = model.optimizer_factory(params=model.parameters())
    assert sum(p.numel() for p in model.parameters()) > 0 and optimizer.param_groups


@pytest.mark.parametrize("name", options("model/optimizer"))
def test_every_optimizer_config(tmp_path, name):
    cfg = composed(tmp_path, "model=mlp", f"model/optimizer={name}")
    model = build_model(cfg)
    assert type(model.optimizer_factory(params=model.parameters())).__name__.lower() == name


@pytest.mark.parametrize("name", options("model/scheduler"))
def test_every_scheduler_config(tmp_path, name):
    cfg = composed(tmp_path, "model=mlp", f"model/scheduler={name}")
    model = build_model(cfg)
    optimizer = model.optimizer_factory(params=model.parameters())
    scheduler = model.scheduler_factory(optimizer, total_steps=100)
    for _ in range(100):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] < cfg.model.optimizer.lr


@pytest.mark.parametrize("name", options("data"))
def test_every_data_config(tmp_path, name):
    cfg = composed(tmp_path, f"data={name}")
    datamodule = build(cfg.data, "data")
    assert datamodule.num_classes >= 2 and len(datamodule.input_shape) >= 1


@pytest.mark.parametrize("name", options("trainer"))
def test_every_trainer_config(tmp_path, name):
    """GPU presets build as they are where CUDA exists; on a CPU box, with devices moved to the CPU."""
    import torch

    cfg = composed(tmp_path, f"trainer={name}")
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        cfg.trainer.accelerator, cfg.trainer.devices = "cpu", 2  # litlab's FSDP runs on CPUs too
    trainer = build(cfg.trainer, "trainer", logger=False)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    strategy = cfg.trainer.get("strategy", "auto")
    if isinstance(strategy, DictConfig):  # a strategy object: its class
        assert type(trainer.strategy).__name__ == strategy._target_.rsplit(".", 1)[1]
    else:
        assert type(trainer.strategy).__name__.lower().startswith(str(strategy).replace("auto", ""))


def test_lightning_fsdp_string_on_cpu_names_the_gpu_need(tmp_path):
    """Lightning's own ``strategy=fsdp`` still refuses a CPU with one line saying why."""
    cfg = composed(tmp_path, "trainer=cpu", "trainer.strategy=fsdp", "trainer.devices=2")
    with pytest.raises(ConfigError, match="fsdp. requires a GPU accelerator"):
        build(cfg.trainer, "trainer", logger=False)


@pytest.mark.parametrize("group", ["logger", "callbacks"])
def test_every_logger_and_callback_config(tmp_path, group):
    for name in options(group):
        cfg = composed(tmp_path, f"{group}={name}")
        objects = build_all(cfg.get(group), group)
        assert name in ("none",) or objects, f"{group}={name} built nothing"


@pytest.mark.parametrize("name", options("experiment"))
def test_every_experiment_config(tmp_path, name):
    cfg = composed(tmp_path, f"experiment={name}")
    datamodule = build(cfg.data, "data")
    model = build(
        cfg.model, "model", num_classes=datamodule.num_classes, input_shape=list(datamodule.input_shape)
    )
    trainer = build(cfg.trainer, "trainer", logger=False)
    assert model is not None and trainer.max_epochs >= 1


@pytest.mark.parametrize("name", options("debug"))
def test_every_debug_config(tmp_path, name):
    cfg = composed(tmp_path, f"debug={name}")
    assert build(cfg.trainer, "trainer", logger=False) is not None


def test_eval_config_composes(tmp_path):
    cfg = composed(tmp_path, config="eval")
    assert cfg.ckpt_path is None and build(cfg.trainer, "trainer", logger=False)


def test_seed_zero_is_kept(tmp_path):
    assert composed(tmp_path, "seed=0").seed == 0


def test_hydra_run_dir_layout(tmp_path):
    cfg = composed(tmp_path)
    assert cfg.hydra.run.dir.endswith("${now:%Y-%m-%d_%H-%M-%S}") or "/train/runs/" in cfg.hydra.run.dir


def test_every_classifier_config_exposes_every_base_argument(tmp_path):
    """One shared config (conf/model/shared/classifier.yaml) carries ClassificationModule's knobs, so
    e.g. model.tta or model.compile is accepted by every classifier, never by some copies only."""
    import inspect

    import hydra

    from litlab.models.base import ClassificationModule

    given_by_the_data = {"self", "num_classes", "input_shape", "scheduler"}  # scheduler: null is allowed
    base_args = set(inspect.signature(ClassificationModule.__init__).parameters) - given_by_the_data
    classifiers = []
    for name in options("model"):
        cfg = composed(tmp_path, f"model={name}")
        if issubclass(hydra.utils.get_class(cfg.model._target_), ClassificationModule):
            classifiers.append(name)
            assert base_args <= set(cfg.model), f"model={name} lacks {sorted(base_args - set(cfg.model))}"
    assert {"mlp", "cnn", "lstm", "airbench", "timm", "perceptron"} <= set(classifiers)


@pytest.mark.parametrize(
    ("accelerator", "cuda", "capability", "cpu_bf16", "expected"),
    [
        ("auto", True, (9, 0), False, "bf16-mixed"),  # H100/H200
        ("gpu", True, (8, 0), False, "bf16-mixed"),  # A100
        ("gpu", True, (7, 0), True, "16-mixed"),  # V100: bf16 only emulated
        ("auto", True, (7, 5), True, "16-mixed"),  # T4
        ("auto", False, None, True, "bf16-mixed"),  # a CPU with AVX512-BF16/AMX
        ("cpu", True, (9, 0), False, "32-true"),  # the CPU of a GPU box, without bf16
        ("mps", False, None, True, "32-true"),
    ],
)
def test_auto_precision_uses_bf16_only_where_it_runs_natively(
    monkeypatch, accelerator, cuda, capability, cpu_bf16, expected
):
    import torch

    from litlab.utils import resolvers

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(resolvers, "cpu_supports_bf16", lambda: cpu_bf16)
    assert resolvers.auto_precision(accelerator) == expected


def test_keras_recipes_start_from_keras_initialisation(tmp_path):
    """model.init=keras (what keras_cnn sets): Glorot-uniform kernels and zero biases, as Keras' layers
    start; the other CNNs keep PyTorch's init, and a mistyped init is one ConfigError."""
    import math

    from torch import nn

    keras = build_model(composed(tmp_path, "model=keras_cnn"))
    layers = [m for m in keras.net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) == 5 and all(not layer.bias.any() for layer in layers)
    for layer in layers:
        fan_out, fan_in = layer.weight.shape[0], layer.weight[0].numel()
        receptive = layer.weight[0, 0].numel()
        bound = math.sqrt(6 / (fan_in + fan_out * receptive))
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
    reference = build_model(composed(tmp_path, "model=cnn", "model.batch_norm=false"))
    assert any(m.bias.any() for m in reference.net.modules() if isinstance(m, nn.Conv2d))
    with pytest.raises(ConfigError, match="model.init"):
        build_model(composed(tmp_path, "model=keras_cnn", "model.init=glorot"))
