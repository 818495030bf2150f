"""End-of-run console output and logger shutdown."""

from __future__ import annotations

import sys
from typing import Any


def close_loggers() -> None:
    """wandb keeps one global run per process: finish it so the next multirun job starts its own.
    Imported only if a logger already imported it, so runs without wandb never pay its import."""
    if "wandb" in sys.modules:
        wandb = sys.modules["wandb"]
        if getattr(wandb, "run", None) is not None:
            wandb.finish()


def print_results(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"litlab {result.get('task_name', '')} results", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = {
        **{k: v for k, v in result.get("final", {}).items() if k.startswith(("val/", "train/"))},
        **result.get("test", {}),
    }
    for key, value in rows.items():
        table.add_row(key, f"{value:.4f}")
    if "predictions" in result:
        table.add_row(
            "predictions", str([round(p, 4) if isinstance(p, float) else p for p in result["predictions"]])
        )
    for key in ("epochs", "wall_time_s"):
        if key in result:
            table.add_row(key, str(result[key]))
    if best := result.get("best", {}).get("ckpt_path"):
        table.add_row("best checkpoint", best)
    Console(stderr=False).print(table)
