"""A full disk as one line: which file, how much it needs, how much is free, and what to do.

A write that runs out of space surfaces as an ``OSError`` with ``errno.ENOSPC`` (json, CSV logs,
Hydra's files) or, from ``torch.save``, as a ``RuntimeError`` that has lost the errno; both become a
``DiskFullError`` naming the file, the space it needs and the space left on its filesystem.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from litlab.errors import DiskFullError

ADVICE = "free some space, or put runs on a bigger disk with paths.log_dir=... (or hydra.run.dir=...)"


def size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB" if n >= 1000 else f"{n} bytes"


def free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):
        if folder.exists():
            return shutil.disk_usage(folder).free
    return None


def disk_full(path: Path, needed: int | None) -> DiskFullError:
    free = free_bytes(path)
    need = f"needs about {size(needed)}" if needed else "could not be written"
    has = f", {size(free)} free there" if free is not None else ""
    return DiskFullError(f"no space left on the device for {path}: it {need}{has}; {ADVICE}")


def tensor_bytes(obj: Any) -> int:
    """What ``torch.save`` will write for ``obj``, near enough: the bytes of its tensors."""
    if isinstance(obj, torch.Tensor):
        return obj.untyped_storage().nbytes() if obj.device.type != "meta" else 0
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def as_disk_full(error: BaseException) -> DiskFullError | None:
    """The ``DiskFullError`` that ``error`` (or what caused it) means, if it is a full disk."""
    links = list(chain(error))
    for link in links:  # the checkpoint's own error (it knows the size) before a logger's after it
        if isinstance(link, DiskFullError):
            return link
    for link in links:
        if isinstance(link, OSError) and link.errno == errno.ENOSPC:
            return disk_full(Path(link.filename or "."), None)
    return None


def write_text_with_fallback(path: Path, text: str) -> tuple[Path, DiskFullError | None]:
    """Write ``text`` to ``path`` atomically; on a full disk, to ``$TMPDIR`` (or the cwd) instead, so
    the record survives. Returns where it went and the error to raise once the run has said so."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.part")
        try:
            partial.write_text(text)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return path, None
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        full = disk_full(path, len(text.encode()))
    name = f"litlab-{path.parent.name}-{os.getpid()}-{path.name}"
    for folder in (Path(tempfile.gettempdir()), Path.cwd()):
        fallback = folder / name
        try:
            fallback.write_text(text)
            return fallback, full
        except OSError:
            continue
    return path, full
