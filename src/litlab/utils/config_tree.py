"""The composed config as a rich tree at the start of a run, as lightning-hydra-template prints it.

Printed (rank 0 only) and saved as ``config_tree.log`` in the run directory, so the values a run
used are readable without opening ``.hydra/config.yaml``; ``extras.print_config=false`` turns it off.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

# the groups a reader looks for first; every other top-level key follows in config order
PRINT_ORDER = ("data", "model", "callbacks", "logger", "trainer", "paths", "extras")


def config_tree(cfg: DictConfig, order: Sequence[str] = PRINT_ORDER, resolve: bool = True):
    """A rich Tree: one branch per top-level key, its value as highlighted YAML."""
    from rich.syntax import Syntax
    from rich.tree import Tree

    style = "dim"
    tree = Tree("CONFIG", style=style, guide_style=style)
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order]
    for key in keys:
        branch = tree.add(str(key), style=style, guide_style=style)
        node = cfg._get_node(key)
        try:
            text = OmegaConf.to_yaml(node, resolve=resolve) if isinstance(node, DictConfig) else str(cfg[key])
        except OmegaConfBaseException:  # a value that cannot resolve yet: shown as written
            text = OmegaConf.to_yaml(node) if isinstance(node, DictConfig) else str(node._value())
        branch.add(Syntax(text, "yaml"))
    return tree


@rank_zero_only
def print_config_tree(cfg: DictConfig, output_dir: Path | None = None) -> None:
    """Print the tree; with ``output_dir``, also write it there as ``config_tree.log`` (plain text)."""
    from rich.console import Console

    tree = config_tree(cfg)
    Console().print(tree)
    if output_dir is not None:
        text = io.StringIO()
        Console(file=text, width=120, no_color=True).print(tree)
        output_dir.mkdir(parents=True, exist_ok=True)  # the syntax blocks pad every line to the width
        (output_dir / "config_tree.log").write_text(
            "".join(f"{line.rstrip()}\n" for line in text.getvalue().splitlines())
        )
