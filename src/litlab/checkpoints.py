"""Reading checkpoints written by litlab's train.py, which carry the run's config (``litlab_config``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from litlab.errors import ConfigError


def load_litlab_checkpoint(
    path: str | Path | None, key: str, not_litlab_hint: str = ""
) -> tuple[Path, dict[str, Any]]:
    """Load a litlab checkpoint named by config key ``key``; every failure is a one-line ConfigError."""
    if not path:
        raise ConfigError(f"{key}=<path to a .ckpt file> is required")
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{key}={path} does not exist; pass the path of a .ckpt file from a litlab train run"
        )
    if path.stat().st_size == 0:
        raise ConfigError(f"{key}={path} is empty (a killed save?); pass another .ckpt, such as last.ckpt")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        reason = str(error).splitlines()[0][:120] if str(error) else ""
        raise ConfigError(
            f"{key}={path} is truncated or not a checkpoint ({type(error).__name__}: {reason}); "
            "pass another .ckpt from the run, such as last.ckpt or epoch_*.ckpt"
        ) from error
    if not isinstance(checkpoint, dict) or "litlab_config" not in checkpoint:
        raise ConfigError(
            f"{key}={path} was not written by litlab's train.py (no stored config){not_litlab_hint}"
        )
    return path, checkpoint


def rebuild_model(
    path: str | Path | None, key: str, not_litlab_hint: str = ""
) -> tuple[L.LightningModule, DictConfig, Path]:
    """The model of a litlab checkpoint with its trained weights, the run's config and the file's path.

    The one way eval.py, sample.py, the GAN scores and transfer from a checkpoint rebuild a model:
    from the config stored inside, with the shapes it was trained on, reading the file once. Pretrained
    weights are not fetched again: the checkpoint holds the trained ones."""
    from litlab.utils.config import build

    path, checkpoint = load_litlab_checkpoint(path, key, not_litlab_hint)
    saved = OmegaConf.create(checkpoint["litlab_config"])
    model_cfg = saved.model.copy()
    if "pretrained" in model_cfg:
        model_cfg.pretrained, model_cfg.pretrained_path = False, None
    hparams = checkpoint["hyper_parameters"]
    model = build(
        model_cfg, key, num_classes=hparams["num_classes"], input_shape=list(hparams["input_shape"])
    )
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise ConfigError(
            f"{key}={path}: its weights do not fit the model its config builds "
            f"({str(error).splitlines()[0]}); was the checkpoint written by another litlab version?"
        ) from error
    return model, saved, path


def check_data_fits(model: L.LightningModule, datamodule: Any, key: str, path: Path) -> None:
    """A checkpoint's model takes the input shape and classes it was trained on, and no others."""
    trained = (tuple(model.hparams.input_shape), model.hparams.num_classes)
    given = (tuple(datamodule.input_shape), datamodule.num_classes)
    if trained != given:
        raise ConfigError(
            f"{key}={path} was trained on input {trained[0]} with {trained[1]} classes, but the data "
            f"gives {given[0]} with {given[1]}; pass data of the same format (or leave data= unset)"
        )


# Lightning's own names for a checkpoint it finds itself
SPECIAL_CKPT_PATHS = ("last", "best", "hpc")


def check_checkpoint_fits(path: str | None, model: torch.nn.Module, key: str = "ckpt_path") -> None:
    """Before fitting or testing: the checkpoint is readable, litlab's, and holds this model's tensors.

    Lightning would find out only inside ``fit``, as a long traceback (or torch's hint to pass
    ``weights_only=False``); here it is one line naming the model the checkpoint belongs to."""
    if not path or str(path) in SPECIAL_CKPT_PATHS or "://" in str(path) or str(path).startswith("registry"):
        return
    path, checkpoint = load_litlab_checkpoint(path, key, "; resume from a checkpoint of a litlab train run")
    stored = checkpoint.get("state_dict") or {}
    own = model.state_dict()
    differ = sorted(
        name
        for name in set(own) | set(stored)
        if name not in own or name not in stored or tuple(own[name].shape) != tuple(stored[name].shape)
    )
    if differ:
        saved = checkpoint["litlab_config"].get("model", {}).get("_target_")

        def shape(tensors: dict[str, Any]) -> str:
            return str(tuple(tensors[differ[0]].shape)) if differ[0] in tensors else "absent"

        raise ConfigError(
            f"{key}={path} holds another model's weights ({saved}: {differ[0]} is {shape(stored)} there, "
            f"{shape(own)} here; {len(differ)} tensors differ); resume with the model and data settings "
            "it was trained with"
        )
