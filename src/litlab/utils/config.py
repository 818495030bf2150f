"""Instantiate from config with errors a user can act on.

Hydra's own errors for a misspelt key or a wrongly typed value surface as a TypeError deep in a
constructor. Here every ``_target_`` node is checked against the real signature first: an
unknown key or a value of the wrong kind becomes a one-line ``ConfigError`` naming the key.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Sequence
from typing import Any

import hydra
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf

from litlab.errors import ConfigError, LitlabError


def _signature_params(target: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    """Parameters (and their type hints) of a callable, following ``**kwargs`` up the class MRO.

    litlab's own classes forward ``**base`` to their parent, so the parent's parameters count.
    An empty result means "cannot tell": every key is accepted."""
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    owners = [k for k in target.__mro__ if "__init__" in vars(k)] if inspect.isclass(target) else [target]
    for owner in owners:
        fn = owner.__init__ if inspect.isclass(owner) else owner
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return {}, {}
        try:
            hints.update({k: v for k, v in typing.get_type_hints(fn).items() if k not in hints})
        except Exception:
            pass
        for name, param in signature.parameters.items():
            if name != "self" and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                params.setdefault(name, param)
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            return params, hints
        if not getattr(owner, "__module__", "").startswith("litlab"):
            return {}, {}  # third-party **kwargs may go anywhere (wandb.init, ...): accept any key
    return {}, {}


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None  # the None arm of an Optional takes None, nothing else
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, list | tuple | ListConfig):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return len(args) != 1 or all(_matches(v, args[0]) for v in value)
    if isinstance(hint, type):  # any other class (Tensor, Path, Strategy, ...): a config value must be one
        try:
            return isinstance(value, hint)
        except TypeError:  # a Protocol that is not runtime-checkable: cannot tell
            return True
    return True  # Literal, callables, generics: Hydra's instantiation or the target checks them


def check_node(node: DictConfig, where: str) -> None:
    """Raise ConfigError if a ``_target_`` node has keys or value kinds its target does not take."""
    try:
        target = hydra.utils.get_object(node._target_)
    except Exception as error:
        raise ConfigError(f"{where}._target_={node._target_!r} cannot be imported ({error})") from error
    params, hints = _signature_params(target)
    for key in node:
        if str(key).startswith("_"):
            continue
        value = node[key]
        if isinstance(value, DictConfig) and "_target_" in value:
            check_node(value, f"{where}.{key}")
        if not params:
            continue
        if key not in params:
            raise ConfigError(f"{where}.{key} is not an argument of {node._target_}; valid: {sorted(params)}")
        plain = OmegaConf.to_object(value) if isinstance(value, DictConfig | ListConfig) else value
        if key in hints and not isinstance(value, DictConfig) and not _matches(plain, hints[key]):
            raise ConfigError(
                f"{where}.{key}={plain!r} has the wrong type: {node._target_} expects {hints[key]}"
            )
    if node.get("_partial_") and inspect.isclass(target) and issubclass(target, torch.optim.Optimizer):
        _check_optimizer_values(node, where, target)


# torch's words for an optimiser's bad value, and the key they stand for
OPTIMIZER_WORDS = {
    "learning rate": "lr",
    "momentum": "momentum",
    "weight_decay": "weight_decay",
    "beta": "betas",
    "epsilon": "eps",
    "dampening": "dampening",
}


def _check_optimizer_values(node: DictConfig, where: str, target: type) -> None:
    """Build the optimiser on one dummy parameter, so a negative lr fails here and not inside fit."""
    values = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if not k.startswith("_")}
    try:
        target([torch.nn.Parameter(torch.zeros(1))], **values)
    except (ValueError, ZeroDivisionError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        key = next(
            (k for word, k in OPTIMIZER_WORDS.items() if word in message.lower() and k in values), None
        )
        name = f"{where}.{key}={values[key]!r}" if key else where
        raise ConfigError(f"{name} is rejected by {node._target_} ({message}); set a valid value") from error


def build(node: DictConfig, where: str, **kwargs: Any) -> Any:
    """Check then instantiate one config node; constructor ``LitlabError``s come out unwrapped."""
    check_node(node, where)
    try:
        return hydra.utils.instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, LitlabError):
            raise cause from None
        raise ConfigError(f"{where}: {error}".replace("\n", " ")) from error


def build_all(group: DictConfig | None, where: str) -> list[Any]:
    """Instantiate every ``_target_`` entry of a dict-of-configs group such as callbacks or logger."""
    if not group:
        return []
    return [build(node, f"{where}.{name}") for name, node in group.items() if node and "_target_" in node]
