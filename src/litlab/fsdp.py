"""Fully sharded data parallel (FSDP) that shards layer by layer, on GPUs and on CPU processes.

Lightning's ``strategy: fsdp`` wraps the whole LightningModule as one FSDP unit: its flat
parameter is split over the ranks, but the forward gathers all of it at once, so no rank ever
holds less than the whole model. ``LayerwiseFSDP`` gives every layer of ``wrap_layers`` its own
unit, gathered only for that layer's forward and backward and freed after it.

Lightning refuses FSDP off CUDA, and torch's FSDP on a CPU module needs ``device_id=cpu`` said
explicitly (Lightning passes the device index, None on a CPU). With both fixed, FSDP runs on
gloo CPU processes (``trainer=fsdp_cpu``), which lets its sharding and checkpoints be tested here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.utils import get_class
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn

from litlab.errors import ConfigError

LAYERS = ("torch.nn.Linear", "torch.nn.Conv2d", "torch.nn.ConvTranspose2d", "torch.nn.Embedding")


def layer_classes(names: Sequence[str]) -> set[type[nn.Module]]:
    """The module classes named by dotted paths; a name that is not a module class is a ConfigError."""
    classes = set()
    for name in names:
        try:
            cls = get_class(name)
        except Exception as error:
            raise ConfigError(
                f"trainer.strategy.wrap_layers: {name!r} is not an importable class; "
                "use dotted module classes such as torch.nn.Linear"
            ) from error
        if not issubclass(cls, nn.Module):
            raise ConfigError(f"trainer.strategy.wrap_layers: {name} is not a torch.nn.Module subclass")
        classes.add(cls)
    return classes


class LayerwiseFSDP(FSDPStrategy):
    """Lightning's ``FSDPStrategy`` with one FSDP unit per ``wrap_layers`` module, on GPU or CPU.

    Every other argument (``sharding_strategy``, ``state_dict_type``, ``cpu_offload``, ...) is
    Lightning's. With ``state_dict_type="full"`` (the default) checkpoints are ordinary single
    files that ``eval.py`` and a one-device run load."""

    def __init__(self, wrap_layers: Sequence[str] = LAYERS, **kwargs: Any) -> None:
        if "auto_wrap_policy" in kwargs:
            raise ConfigError("trainer.strategy: set wrap_layers=[...], not auto_wrap_policy")
        super().__init__(auto_wrap_policy=layer_classes(wrap_layers), **kwargs)

    def _setup_model(self, model: nn.Module) -> nn.Module:
        if self.root_device.type != "cpu":
            return super()._setup_model(model)
        from lightning.pytorch.strategies.fsdp import _setup_activation_checkpointing
        from torch.distributed.fsdp import FullyShardedDataParallel

        # the same wrapping as Lightning's, with the CPU named as the device FSDP computes on
        if not any(isinstance(module, FullyShardedDataParallel) for module in model.modules()):
            model = FullyShardedDataParallel(
                module=model,
                cpu_offload=self.cpu_offload,
                mixed_precision=self.mixed_precision_config,
                sharding_strategy=self.sharding_strategy,
                device_id=self.root_device,
                **self.kwargs,
            )
        _setup_activation_checkpointing(model, self._activation_checkpointing_kwargs)
        return model

    def lightning_module_state_dict(self) -> dict[str, Any]:
        if self.root_device.type != "cpu" or self._state_dict_type != "full":
            return super().lightning_module_state_dict()
        from torch.distributed.fsdp import FullStateDictConfig, StateDictType
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        # Lightning gathers with offload_to_cpu=True, which in torch 2.13 segfaults on rank 0 when the
        # parameters already live on the CPU; there, gathering in place is the same thing
        config = FullStateDictConfig(offload_to_cpu=False, rank0_only=True)
        with FSDP.state_dict_type(self.model, StateDictType.FULL_STATE_DICT, config):
            return self.model.state_dict()
