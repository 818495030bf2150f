"""Checkpoint writes that a kill cannot corrupt, whatever filesystem ``$TMPDIR`` is on.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction: a temp file in ``$TMPDIR``,
then ``shutil.move`` into place. When ``$TMPDIR`` is another filesystem (a tmpfs, often), the move is
a copy over the target, so a kill mid-copy leaves a truncated or empty checkpoint where a good one
was; on any filesystem a kill leaks the temp file in ``$TMPDIR``. Here the temp file sits beside the
target and is fsynced, then renamed over it: a reader sees the old checkpoint or the new one, never
part of one. A temp file left by a killed writer is removed at the next save or load in its folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from litlab.utils.disk import disk_full, free_bytes, tensor_bytes

TEMP_SUFFIX = ".tmp"


def _is_local(path: str | Path) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


def _host() -> str:
    return socket.gethostname().replace(".", "-")


def _temp_name(target: Path) -> Path:
    """Hidden, beside the target, naming its writer so that only a dead writer's file is swept."""
    writer = f"{_host()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    return target.with_name(f".{target.name}.{writer}{TEMP_SUFFIX}")


def _writer_alive(temp: Path) -> bool:
    parts = temp.name.removesuffix(TEMP_SUFFIX).rsplit(".", 3)
    if len(parts) != 4 or parts[1] != _host() or not parts[2].isdigit():
        return True  # not ours, or another host's: cannot tell, leave it
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: Path) -> None:
    """Delete temp files whose writer on this host no longer runs (it was killed mid-write)."""
    for temp in folder.glob(f".*.ckpt.*{TEMP_SUFFIX}"):
        if not _writer_alive(temp):
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _fsync_dir(folder: Path) -> None:
    """Makes the rename itself durable; some filesystems cannot open a directory, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_torch_save(obj: Any, target: Path) -> None:
    """On a full disk nothing is left behind and the old checkpoint stays: a ``DiskFullError`` names
    the file and the space it needs, checked before writing, and again when the write fails (torch
    reports a full disk as a RuntimeError without the errno)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    needed = tensor_bytes(obj)
    if (free := free_bytes(target.parent)) is not None and needed > free:
        raise disk_full(target, needed)
    temp = _temp_name(target)
    try:
        with open(temp, "xb") as file:  # honours the umask, unlike mkstemp's 0600
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        full = isinstance(error, OSError) and error.errno == errno.ENOSPC
        if full or (
            isinstance(error, RuntimeError) and (free_bytes(target.parent) or 0) < needed + (1 << 20)
        ):
            raise disk_full(target, needed) from error
        raise
    _fsync_dir(target.parent)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with local writes made atomic in the checkpoint's own folder; remote
    paths (``s3://`` ...) keep Lightning's fsspec write."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(str(path).removeprefix("file://"))
        remove_stale_temps(target.parent)
        atomic_torch_save(checkpoint, target)

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        if _is_local(path):  # resuming from a killed run's folder also clears what it left
            remove_stale_temps(Path(str(path).removeprefix("file://")).parent)
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
