"""Transfer family: fine-tune any ``timm`` backbone, or the network of an earlier litlab run.

Named ``timm_transfer`` so it does not shadow the ``timm`` package; the config is ``model=timm``.
The head is always reset to the data's classes and the first conv adapted to its channels.
Weights come from timm's hub (``pretrained``), a local file (``pretrained_path``) or a litlab
checkpoint (``backbone_ckpt``, the offline path). ``finetune`` picks what trains: ``full``,
``linear_probe`` (backbone and its BatchNorm statistics frozen) or ``gradual`` (unfreeze at the
``unfreeze_at`` epochs); the backbone learns at the head's lr times ``backbone_lr_factor``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from litlab.errors import ConfigError
from litlab.models.base import ClassificationModule
from litlab.models.transfer.finetuning import GradualUnfreezing, freeze_batchnorm_of_frozen
from litlab.models.transfer.weights import (
    backbone_from_checkpoint,
    classifier_prefixes,
    create_timm,
    load_backbone_weights,
    read_state_dict,
)

FINETUNE_MODES = ("full", "linear_probe", "gradual")
NORMALIZE_MODES = ("backbone", "data")
# frozen BatchNorms stay in eval mode on purpose (their statistics are frozen): not worth a warning
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")


class TimmClassifier(ClassificationModule):
    def __init__(
        self,
        backbone: str | None = "resnet18",
        pretrained: bool = False,
        pretrained_path: str | None = None,
        backbone_ckpt: str | None = None,
        finetune: str = "full",
        unfreeze_at: Sequence[int] = (),
        backbone_lr_factor: float = 1.0,
        input_size: int | str | None = None,
        normalize: str = "backbone",
        model_kwargs: dict[str, Any] | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        check_options(finetune, list(unfreeze_at), normalize, input_size, backbone_lr_factor)
        if len(self.input_shape) != 3:
            raise ConfigError(f"model=timm needs image input (C, H, W), got shape {self.input_shape}")
        in_chans = self.input_shape[0]
        if backbone_ckpt:
            self.net = backbone_from_checkpoint(backbone_ckpt, self.num_outputs, in_chans)
        elif not backbone:
            raise ConfigError(
                "model.backbone is empty; name a timm model (e.g. resnet18) or set model.backbone_ckpt"
            )
        else:
            use_hub = pretrained and not pretrained_path
            self.net = create_timm(backbone, self.num_outputs, in_chans, use_hub, dict(model_kwargs or {}))
            if pretrained_path:
                weights = read_state_dict(pretrained_path, "model.pretrained_path")
                load_backbone_weights(self.net, weights, f"model.pretrained_path={pretrained_path}")
        self.head_prefixes = classifier_prefixes(self.net)
        self.backbone_mean, self.backbone_std = self.backbone_stats(in_chans)
        self.resize = self.target_size(input_size)
        # data normalisation -> backbone normalisation, an affine map per channel (set in setup)
        self.register_buffer("input_scale", torch.ones(1, in_chans, 1, 1), persistent=False)
        self.register_buffer("input_shift", torch.zeros(1, in_chans, 1, 1), persistent=False)
        self.check_input_fits()
        if finetune in ("linear_probe", "gradual"):
            self.freeze_backbone()

    # --- construction helpers ----------------------------------------------------------------
    def backbone_stats(self, in_chans: int) -> tuple[list[float] | None, list[float] | None]:
        """The mean/std the backbone was pretrained with (none for a litlab CNN: keep the data's)."""
        cfg = getattr(self.net, "pretrained_cfg", None)
        if not cfg or "mean" not in cfg or self.hparams.normalize == "data":
            return None, None
        mean, std = list(cfg["mean"]), list(cfg["std"])
        if in_chans != len(mean):  # e.g. grey MNIST into an RGB backbone: the channel average
            mean, std = [sum(mean) / len(mean)] * in_chans, [sum(std) / len(std)] * in_chans
        return mean, std

    def target_size(self, input_size: int | str | None) -> tuple[int, int] | None:
        if input_size is None:
            return None
        if input_size == "pretrained":
            cfg = getattr(self.net, "pretrained_cfg", None) or {}
            if "input_size" not in cfg:
                raise ConfigError("model.input_size=pretrained: this backbone has no pretrained input size")
            return tuple(cfg["input_size"][-2:])
        return (int(input_size), int(input_size))

    def check_input_fits(self) -> None:
        shape = (self.input_shape[0], *(self.resize or self.input_shape[1:]))
        try:
            with torch.no_grad():
                self.net.eval()(torch.zeros(1, *shape))
        except Exception as error:
            raise ConfigError(
                f"the backbone cannot take {shape[-2]}x{shape[-1]} input ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200]}); set model.input_size=pretrained (or a size) to "
                "resize, or for a ViT pass model.model_kwargs={img_size: <size>}"
            ) from error
        finally:
            self.net.train()

    # --- what trains ---------------------------------------------------------------------------
    def is_head(self, name: str) -> bool:
        return name.startswith(self.head_prefixes)

    def freeze_backbone(self) -> None:
        for name, param in self.net.named_parameters():
            param.requires_grad_(self.is_head(name))
        self.train(self.training)

    def train(self, mode: bool = True) -> TimmClassifier:
        super().train(mode)
        if mode:
            freeze_batchnorm_of_frozen(self.net)
        return self

    @property
    def ddp_find_unused_parameters(self) -> bool:
        """Gradual unfreezing leaves the frozen chunks without gradients, then gives them some: DDP
        must look for unused parameters each step (``litlab.distributed.ddp_strategy``)."""
        return self.hparams.finetune == "gradual"

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The head first (at the optimiser's lr), then the trainable backbone at lr x backbone_lr_factor.

        Under DDP, gradual unfreezing left every parameter trainable for DDP to register (``setup``):
        the backbone is frozen again here, once DDP has wrapped the model."""
        if self.hparams.finetune == "gradual" and self.distributed_fit:
            self.freeze_backbone()
        head = [p for n, p in self.net.named_parameters() if self.is_head(n) and p.requires_grad]
        body = [p for n, p in self.net.named_parameters() if not self.is_head(n) and p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": head}]
        if body:
            groups.append({"params": body, "lr_factor": self.hparams.backbone_lr_factor})
        return groups

    def configure_callbacks(self) -> list[L.Callback]:
        if self.hparams.finetune == "gradual":
            return [GradualUnfreezing(self.hparams.unfreeze_at)]
        return []

    # --- preprocessing ---------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        self.set_input_normalization(datamodule)
        if stage == "fit" and self.hparams.finetune == "gradual" and self.distributed_fit:
            # DDP all-reduces only what requires grad when it wraps the model, which comes next: a
            # chunk unfrozen later would train on each rank's own gradient and the ranks drift apart
            self.net.requires_grad_(True)

    @property
    def distributed_fit(self) -> bool:
        return self._trainer is not None and self.trainer.world_size > 1

    def set_input_normalization(self, datamodule: Any) -> None:
        """Map what the data module delivers (``standard``/``symmetric``/``unit``) to the backbone's mean/std."""
        if self.backbone_mean is None:
            return
        channels = self.input_shape[0]
        mode = getattr(datamodule, "normalize", "unit")
        a, b = torch.ones(channels), torch.zeros(channels)  # x_unit = a * x + b, pixels in [0, 1]
        if mode == "standard":
            a, b = (
                torch.tensor(datamodule.std, dtype=torch.float),
                torch.tensor(datamodule.mean, dtype=torch.float),
            )
        elif mode == "symmetric":
            a, b = a * 0.5, b + 0.5
        mean, std = torch.tensor(self.backbone_mean), torch.tensor(self.backbone_std)
        self.input_scale.copy_((a / std).view(1, -1, 1, 1))
        self.input_shift.copy_(((b - mean) / std).view(1, -1, 1, 1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        inputs = inputs * self.input_scale + self.input_shift
        if self.resize is not None and tuple(inputs.shape[-2:]) != self.resize:
            inputs = F.interpolate(
                inputs, size=self.resize, mode="bilinear", align_corners=False, antialias=False
            )
        return super().forward(inputs)


def check_options(
    finetune: str, unfreeze_at: list[int], normalize: str, input_size: int | str | None, factor: float
) -> None:
    if finetune not in FINETUNE_MODES:
        raise ConfigError(f"model.finetune={finetune!r} is not one of {FINETUNE_MODES}")
    if normalize not in NORMALIZE_MODES:
        raise ConfigError(f"model.normalize={normalize!r} is not one of {NORMALIZE_MODES}")
    if finetune == "gradual" and (
        not unfreeze_at or sorted(unfreeze_at) != unfreeze_at or min(unfreeze_at) < 1
    ):
        raise ConfigError(
            "model.finetune=gradual needs increasing epochs >= 1 in model.unfreeze_at, e.g. model.unfreeze_at=[2,4]"
        )
    if finetune != "gradual" and unfreeze_at:
        raise ConfigError("model.unfreeze_at is used only with model.finetune=gradual")
    if isinstance(input_size, str) and input_size != "pretrained":
        raise ConfigError(f"model.input_size={input_size!r}: use a number of pixels or 'pretrained'")
    if factor < 0:
        raise ConfigError(f"model.backbone_lr_factor={factor} must be >= 0")
