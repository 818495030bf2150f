"""The ranks of a DDP job live and fail together, and a failure on any rank reaches the job's record.

Lightning's launcher (rank 0) watches the ranks it starts with a thread that, as soon as one exits
non-zero, SIGKILLs them all and rank 0 itself. Under ``-m`` rank 0 is the whole sweep: the sweep
dies with 137 and rank 0 never records the failure. Here the watcher waits instead: rank 0 sees
the broken collective, fails, records the job, and at the job's end (``end_ranks``) its ranks are
waited for and, if they linger, terminated. Only if rank 0 stays blocked long after a rank died does
the watcher record the failure itself and kill, as Lightning does.

Each non-zero rank writes its error to ``rank<N>_error.json`` in the job dir; rank 0 folds those
into ``metrics.json`` (``failure_record``), naming the rank that failed first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

WATCH_PERIOD_S = 1.0
HANG_GRACE_S = 60.0  # a rank died and rank 0 is still blocked in a collective this much later
RANK_EXIT_S = 15.0  # how long the job's end waits for its ranks to exit before terminating them
TRACEBACK_LINES = 12


def global_rank() -> int:
    from lightning.pytorch.utilities import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0) or 0)


def error_summary(error: BaseException) -> dict[str, Any]:
    return {
        "error": f"{type(error).__name__}: {error}",
        "traceback": traceback.format_exception(error)[-TRACEBACK_LINES:],
        "time": time.time(),
    }


def write_rank_error(output_dir: Path, error: BaseException) -> None:
    """What a non-zero rank leaves for rank 0, which alone writes metrics.json."""
    rank = global_rank()
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"rank{rank}_error.json"
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps({"rank": rank, **error_summary(error)}, indent=2, default=str))
    partial.replace(path)


def clear_rank_errors(output_dir: Path) -> None:
    """A resumed job in the same dir must not report the previous attempt's rank errors."""
    for path in output_dir.glob("rank*_error.json"):
        path.unlink(missing_ok=True)


def failure_record(output_dir: Path, own_error: BaseException | None) -> dict[str, Any]:
    """The failure fields of rank 0's metrics.json: the error and traceback of the rank that failed
    first and, when a rank other than 0 failed, that ``failed_rank`` and every failed rank's error
    and traceback under ``ranks``."""
    ranks: dict[str, dict[str, Any]] = {}
    if own_error is not None:
        ranks["0"] = error_summary(own_error)
    for path in sorted(output_dir.glob("rank*_error.json")):
        try:
            other = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        ranks[str(other.pop("rank"))] = other
    for rank, code in _exit_codes.items():
        ranks.setdefault(str(rank), {"error": f"rank {rank} exited with code {code}", "time": time.time()})
    if not ranks:
        return {"error": "unknown failure", "traceback": []}
    first = min(ranks, key=lambda r: ranks[r]["time"])
    error = ranks[first]["error"] if first == "0" else f"rank {first}: {ranks[first]['error']}"
    record = {"error": error, "traceback": ranks[first].get("traceback", [])}
    if set(ranks) != {"0"}:  # a distributed failure: which rank, and what each failed rank saw
        record.update(failed_rank=int(first), ranks=ranks)
    return record


class RankFailedError(RuntimeError):
    """A rank other than 0 failed although rank 0 finished."""


class RankWatcher(threading.Thread):
    """Lightning's ``_ChildProcessObserver``, patient: it leaves rank 0 the time to fail on its own."""

    def __init__(self, children: list[subprocess.Popen], output_dir: Path | None) -> None:
        super().__init__(daemon=True, name="litlab-rank-watcher")
        self.children, self.output_dir = children, output_dir
        self.stopped = threading.Event()

    def run(self) -> None:
        failed_at = None
        while not self.stopped.wait(WATCH_PERIOD_S):
            if failed_at is None and any(child.poll() for child in self.children):
                failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > HANG_GRACE_S:
                self.kill_hung_job()
                return

    def kill_hung_job(self) -> None:
        """Rank 0 is stuck in a collective whose peer died: record, then kill as Lightning would."""
        print(
            f"litlab: a rank died and rank 0 is still blocked {HANG_GRACE_S:.0f} s later; killing the job",
            file=sys.stderr,
        )
        if self.output_dir is not None:
            from litlab.pipeline import write_metrics

            record_exit_codes(self.children)
            write_metrics({"status": "failed", **failure_record(self.output_dir, None)}, self.output_dir)
        for child in self.children:
            child.kill()
        os.kill(os.getpid(), signal.SIGKILL)


_children: list[subprocess.Popen] = []
_watcher: RankWatcher | None = None
_exit_codes: dict[int, int] = {}


def watch_ranks(children: list[subprocess.Popen]) -> None:
    """Replaces Lightning's ``_launch_process_observer`` (``litlab.distributed.install_hydra_relaunch``)."""
    global _watcher
    from hydra.core.hydra_config import HydraConfig

    output_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
    _children[:] = children
    _exit_codes.clear()
    _watcher = RankWatcher(children, output_dir)
    _watcher.start()


def record_exit_codes(children: list[subprocess.Popen]) -> None:
    for rank, child in enumerate(children, start=1):
        if child.returncode:
            _exit_codes[rank] = child.returncode


def end_ranks() -> None:
    """At the end of a job on rank 0: stop watching, let its ranks exit, terminate any that linger.

    Afterwards the exit codes of failed ranks are known to ``failure_record``; a rank that failed
    while rank 0 succeeded raises ``RankFailedError``, so the job is recorded failed."""
    global _watcher
    if _watcher is not None:
        _watcher.stopped.set()
        _watcher = None
    if not _children:
        _exit_codes.clear()
        return
    deadline = time.monotonic() + RANK_EXIT_S
    for child in _children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    _exit_codes.clear()
    record_exit_codes(_children)
    _children.clear()


def raise_if_a_rank_failed() -> None:
    if _exit_codes:
        ranks = ", ".join(f"rank {r} (exit {c})" for r, c in sorted(_exit_codes.items()))
        raise RankFailedError(f"{ranks} failed while rank 0 finished")
