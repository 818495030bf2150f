"""Fetching and unpacking official dataset archives, with checksums and clear offline errors."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import stat
import sys
import tarfile
import urllib.request
from pathlib import Path

from litlab.errors import DataError

DOWNLOAD_TIMEOUT_S = 30


def file_md5(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str | None) -> Path:
    """Download ``url`` to ``dest`` atomically: a partial or corrupt download never lands at ``dest``.
    Its folder is made only once the server answers, so an offline try leaves no empty folder."""
    partial = dest.with_name(dest.name + ".part")
    print(f"litlab: downloading {url} to {dest} (first run only)...", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as out:
                shutil.copyfileobj(response, out, length=1 << 20)
    except OSError as error:  # URLError, timeouts and refused connections are all OSErrors
        partial.unlink(missing_ok=True)
        raise DataError(f"download of {url} failed ({error})") from error
    if md5 is not None and (actual := file_md5(partial)) != md5:
        partial.unlink(missing_ok=True)
        raise DataError(f"download of {url} is corrupt: md5 {actual}, expected {md5}")
    os.replace(partial, dest)
    return dest


def find_or_download(path: Path, url: str, md5: str | None, allowed: bool, hint: str) -> Path:
    """``path`` when it exists, else downloaded there (if ``allowed``: ``data.download``). Every
    failure is one line: ``hint`` (what to put where), then why the download failed."""
    if path.exists():
        return path
    if not allowed:
        raise DataError(hint)
    try:
        return download(url, path, md5)
    except DataError as error:
        raise DataError(f"{hint} ({error})") from error


def is_writable_dir(path: Path) -> bool:
    """Writable by permission bits, not just by access(): root may write anywhere, but a folder
    marked read-only (a shared data mount) must not have archives extracted into it."""
    probe = path if path.exists() else path.parent
    return os.access(probe, os.W_OK) and bool(probe.stat().st_mode & stat.S_IWUSR)


def cache_root() -> Path:
    """Where archives from read-only data dirs (a shared mount) are extracted: LITLAB_CACHE_DIR or ~/.cache/litlab."""
    return Path(os.environ.get("LITLAB_CACHE_DIR", "~/.cache/litlab")).expanduser()


def writable_home(folder: Path, key: Path) -> Path:
    """``folder`` when it is writable, else a cache folder keyed by ``key``'s path (a read-only mount)."""
    if is_writable_dir(folder):
        return folder
    return cache_root() / hashlib.md5(str(key.resolve()).encode()).hexdigest()[:12]


def extraction_dir(archive: Path) -> Path:
    """Beside the archive when that folder is writable, else a cache folder keyed by the archive's path."""
    return writable_home(archive.parent, archive)


def file_stamp(path: Path) -> str:
    """Path, size and mtime: what says a file was replaced or truncated, without reading it."""
    info = path.stat()
    return f"{path.resolve()} {info.st_size} {info.st_mtime_ns}"


def extract_once(archive: Path, member: str) -> Path:
    """Extract ``archive`` once and return the path of its top-level ``member`` folder.

    The completion marker (the archive's size and mtime) is the only proof of a finished extraction.
    Extraction holds a lock beside the marker, so a second launch waits for the first instead of
    rewriting the files it is reading, and goes into a temp folder that is renamed into place: a
    killed extraction leaves no half-filled ``member`` and no marker, and is redone next time.
    """
    into = extraction_dir(archive)
    marker = into / f".{member}.extracted"
    stamp = file_stamp(archive)

    def done() -> bool:
        return marker.exists() and marker.read_text() == stamp and (into / member).is_dir()

    if done():
        return into / member
    try:
        into.mkdir(parents=True, exist_ok=True)
        lock = open(into / f".{member}.lock", "a")  # noqa: SIM115 - held by the with below
    except OSError as error:  # read-only (EROFS) or not ours (EACCES): the data dir and the cache
        where = f"into {into}" if into == archive.parent else f"(its folder is read-only) into {into}"
        raise DataError(
            f"cannot extract {archive} {where} ({error.strerror}); set LITLAB_CACHE_DIR "
            "to a writable folder, or extract the archive into a writable folder and point paths.data_dir at it"
        ) from error
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
        if done():  # another process finished it while this one waited
            return into / member
        for stale in into.glob(f".{member}.extracting-*"):  # left by a killed extraction
            shutil.rmtree(stale, ignore_errors=True)
        temp = into / f".{member}.extracting-{os.getpid()}"
        marker.unlink(missing_ok=True)
        print(f"litlab: extracting {archive} into {into} (first run only)...", file=sys.stderr, flush=True)
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(temp, filter="data")
            if not (temp / member).is_dir():
                raise tarfile.TarError(f"it holds no {member}/ folder")
            if (into / member).exists():  # an older or unfinished extraction
                shutil.rmtree(into / member)
            os.replace(temp / member, into / member)
        except (tarfile.TarError, EOFError, OSError) as error:
            raise DataError(
                f"{archive} is truncated or corrupt ({error}); delete it and re-download"
            ) from error
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        partial = marker.with_name(f"{marker.name}.{os.getpid()}.part")
        partial.write_text(stamp)
        os.replace(partial, marker)
    return into / member


def offline_hint(name: str, data_dir: Path, expected: str) -> str:
    return (
        f"{name} not found in {data_dir}. Put {expected} there, or point at a folder that holds it with "
        f"`paths.data_dir=/path` (make train DATA_DIR=/path)"
    )
