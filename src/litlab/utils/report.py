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


def as_tracking_error(error: BaseException) -> Exception | None:
    """W&B that cannot start its run online (a wrong key, no network, a server that does not answer
    within ``logger.wandb.settings.init_timeout``) as one line naming the fixes. W&B is shut down
    first, so that its own exit messages come before that line, not after it."""
    from litlab.errors import ConfigError

    kind = type(error)
    if kind.__module__.startswith("wandb") and kind.__name__ in (
        "CommError",
        "AuthenticationError",
        "UsageError",
    ):
        sys.modules["wandb"].teardown()
        reason = str(error).splitlines()[0] if str(error) else kind.__name__
        return ConfigError(
            f"W&B could not start the run online ({reason}); check WANDB_API_KEY (`wandb login --relogin`) "
            "and the network, or log offline with WANDB_MODE=offline (or logger=csv)"
        )
    return None


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
