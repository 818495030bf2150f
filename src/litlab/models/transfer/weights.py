"""Where a transfer backbone's weights come from: timm's hub, a local file, or a litlab checkpoint.

Every path is offline-safe: timm's own download is only tried after a short network probe, and
when the weights are neither cached nor reachable the error names the file to provide instead.
timm is imported inside the functions so that ``import litlab`` stays fast for other families.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from litlab.errors import ConfigError

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
PROBE_TIMEOUT_S = 3.0


def create_timm(
    name: str, num_classes: int, in_chans: int, pretrained: bool, kwargs: dict[str, Any]
) -> nn.Module:
    """``timm.create_model`` with the head sized to the data and clear errors for bad names and weights."""
    import timm

    if not timm.is_model(name):
        raise ConfigError(
            f"unknown model.backbone {name!r}: timm does not know it; list names with "
            f"python -c \"import timm; print(timm.list_models('*{name[:6]}*'))\""
        )
    if pretrained:
        ensure_pretrained_available(name)
    try:
        return timm.create_model(
            name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs
        )
    except TypeError as error:
        raise ConfigError(
            f"model.model_kwargs={kwargs} is not accepted by timm model {name!r}: {error}"
        ) from error
    except (OSError, RuntimeError, ValueError) as error:
        if not pretrained:
            raise
        raise ConfigError(f"{missing_weights_hint(name)} ({type(error).__name__}: {error})") from error


def weights_source(name: str) -> tuple[str | None, str]:
    """(Hugging Face repo id or None, download URL) of a model's default pretrained weights."""
    import timm

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise ConfigError(
            f"timm has no pretrained weights for model.backbone={name!r}; set model.pretrained=false "
            "or pass model.pretrained_path=<weights file>"
        )
    if cfg.hf_hub_id:
        filename = cfg.hf_hub_filename or "model.safetensors"
        return cfg.hf_hub_id, f"https://huggingface.co/{cfg.hf_hub_id}/resolve/main/{filename}"
    return None, cfg.url


def missing_weights_hint(name: str) -> str:
    _, url = weights_source(name)
    return (
        f"model.pretrained=true: the weights of {name!r} are not in the local cache and cannot be downloaded; "
        f"fetch {url} on a machine with internet and pass model.pretrained_path=<that file>"
    )


def is_cached(name: str) -> bool:
    repo_id, url = weights_source(name)
    if repo_id is not None:
        from huggingface_hub import try_to_load_from_cache

        return any(
            isinstance(try_to_load_from_cache(repo_id, f), str)
            for f in ("model.safetensors", "pytorch_model.bin", Path(url).name)
        )
    return (Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name).exists()


def network_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Can we open a TCP connection to the weights host within ``timeout`` (DNS included)?"""
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)  # getaddrinfo ignores socket timeouts
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def ensure_pretrained_available(name: str) -> bool:
    """True if the weights are cached; raise (naming the file) if neither cached nor reachable."""
    repo_id, url = weights_source(name)
    if is_cached(name):
        return True
    endpoint, offline = url, os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    if repo_id is not None:
        from huggingface_hub import constants

        endpoint, offline = constants.ENDPOINT, offline or constants.HF_HUB_OFFLINE
    if offline or not network_reachable(endpoint):
        raise ConfigError(missing_weights_hint(name))
    return False


# --- local files -------------------------------------------------------------------------------
def read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors / .pth / .bin / .ckpt file, unwrapped from the usual containers."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{what}={path} does not exist; pass the path of a {'/'.join(WEIGHT_SUFFIXES)} file"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConfigError(
            f"{what}={path} cannot be read as weights ({type(error).__name__}: {error})"
        ) from error
    for key in ("state_dict", "model", "model_state", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise ConfigError(f"{what}={path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def classifier_prefixes(net: nn.Module) -> tuple[str, ...]:
    """Parameter-name prefixes of the classification head (timm's pretrained_cfg names it)."""
    if isinstance(getattr(net, "litlab_head", None), str):
        return (f"{net.litlab_head}.",)
    cfg = getattr(net, "pretrained_cfg", None) or {}
    head = cfg.get("classifier") or "head"
    return tuple(f"{h}." for h in ([head] if isinstance(head, str) else head))


def load_backbone_weights(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load all but the head; adapt the first conv to the input channels; refuse another architecture."""
    from timm.models import adapt_input_conv

    head = classifier_prefixes(net)
    own = net.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    for key, value in list(state.items()):
        if key in own and value.dim() == 4 and own[key].dim() == 4 and value.shape[1] != own[key].shape[1]:
            state[key] = adapt_input_conv(own[key].shape[1], value)  # e.g. RGB weights, 1-channel MNIST
    mismatched = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    missing = [k for k in own if k not in state and not k.startswith(head) and "num_batches_tracked" not in k]
    if mismatched or missing:
        example = (mismatched or missing)[:3]
        raise ConfigError(
            f"{source} does not fit backbone {type(net).__name__}: {len(missing)} weights missing and "
            f"{len(mismatched)} of another shape (e.g. {example}); it holds weights of another architecture"
        )
    net.load_state_dict(state, strict=False)


# --- litlab checkpoints ------------------------------------------------------------------------
def backbone_from_checkpoint(path: str | Path, num_outputs: int, in_chans: int) -> nn.Module:
    """The network of a litlab run (any family) with its weights, head reset to ``num_outputs``,
    rebuilt from the config stored in the checkpoint as ``eval.py`` does."""
    from litlab.checkpoints import rebuild_model

    source, _, _ = rebuild_model(
        path, "model.backbone_ckpt", "; for a plain weights file use model.pretrained_path"
    )
    net = source.net
    reset_head(net, num_outputs)
    adapt_first_conv(net, in_chans)
    return net


def reset_head(net: nn.Module, num_outputs: int) -> None:
    """A fresh classifier for the new classes: timm's own reset, else the last Linear of a Sequential."""
    if hasattr(net, "reset_classifier"):
        net.reset_classifier(num_outputs)
        return
    linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"model.backbone_ckpt: no Linear head found in {type(net).__name__} to reset")
    name, old = linears[-1]
    parent = net.get_submodule(name.rsplit(".", 1)[0]) if "." in name else net
    setattr(
        parent, name.rsplit(".", 1)[-1], nn.Linear(old.in_features, num_outputs, bias=old.bias is not None)
    )
    net.litlab_head = name  # type: ignore[assignment]


def adapt_first_conv(net: nn.Module, in_chans: int) -> None:
    from timm.models import adapt_input_conv

    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or conv.in_channels == in_chans:
        return
    conv.weight = nn.Parameter(adapt_input_conv(in_chans, conv.weight.detach()))
    conv.in_channels = in_chans
