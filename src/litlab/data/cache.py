"""One keyed cache for parsed data: CIFAR-10's and MNIST's arrays and IMDB's encoded corpus.

A run after the first skips unpickling, decompressing or tokenising, which every job of a sweep
would otherwise repeat. The key holds everything the value depends on (each source file's path,
size and mtime, and the settings that change it), so a replaced or truncated file or a changed
setting is parsed again, never read stale. A cache that cannot be read is rebuilt, and one that
cannot be written is skipped with a warning: the cache never decides whether data loads.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import torch

from litlab.data.download import file_stamp

FORMAT_VERSION = 2  # bump when what is cached changes
T = TypeVar("T")


def source_stamps(sources: Sequence[Path]) -> list[str]:
    return [file_stamp(path) for path in sources]


def cache_file(folder: Path, name: str, key: object) -> Path:
    digest = hashlib.sha256(json.dumps([FORMAT_VERSION, key], sort_keys=True).encode()).hexdigest()[:16]
    return folder / f".litlab-{name}-{digest}.pt"


def cached(
    folder: Path, name: str, key: object, build: Callable[[], T], doing: str | None = None
) -> tuple[T, Path, bool]:
    """(``build()``'s value, its cache file, whether it came from the cache). ``key`` is JSON data
    naming everything the value depends on; the value is tensors, lists, dicts and plain numbers.
    ``doing`` says what ``build`` does; a miss prints it first, since a first run may build for a
    while in silence (tokenising 50,000 IMDB reviews)."""
    path = cache_file(folder, name, key)
    if path.exists():
        try:
            return torch.load(path, weights_only=True), path, True
        except Exception:  # damaged, or written by another torch: rebuilt below
            pass
    print(
        f"litlab: {doing or f'parsing the {name} data'} into a cache (first run only)...",
        file=sys.stderr,
        flush=True,
    )
    value = build()
    # a name of its own per process: parallel sweep jobs that all miss write side by side, and
    # each rename lands one writer's complete file
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(value, partial)
        os.replace(partial, path)
    except OSError as error:  # a full or read-only disk: no cache, and no half-written part left behind
        partial.unlink(missing_ok=True)
        warnings.warn(f"could not cache the parsed {name} data in {folder} ({error})", stacklevel=2)
    return value, path, False
