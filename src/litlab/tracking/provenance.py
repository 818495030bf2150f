"""Which code, packages and machine produced a run: ``provenance.json`` (and ``git.patch`` when the tree
was dirty) in every run directory, and the same dict in every logger's config.

Cheap by design, since every run pays it: package versions come from the ``*.dist-info`` folder names
(no ``pip freeze``, no metadata parsing) and git answers three short commands. Outside a git checkout,
or without git, the git fields are null.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

PROVENANCE = "provenance.json"
PATCH = "git.patch"
# untracked files go into git.patch as new-file diffs only when they are small text: big or binary
# untracked files (data, outputs someone forgot to ignore) are listed by name in provenance.json
UNTRACKED_MAX_BYTES = 256_000
UNTRACKED_MAX_FILES = 50


def git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def code_root() -> Path:
    """The checkout the entry script ran from (``LITLAB_ROOT``, set by litlab.entry), else litlab's own."""
    return Path(os.environ.get("LITLAB_ROOT") or Path(__file__).resolve().parents[3])


def new_file_diff(root: Path, name: str) -> str | None:
    """A ``git apply``-able diff that creates the untracked file ``name``; None if big or binary."""
    path = root / name
    try:
        if path.stat().st_size > UNTRACKED_MAX_BYTES:
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    tail = "" if text.endswith("\n") or not text else "\\ No newline at end of file\n"
    return (
        f"diff --git a/{name} b/{name}\nnew file mode 100644\n--- /dev/null\n+++ b/{name}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}{tail}"
    )


def git_state(root: Path) -> tuple[dict[str, Any], str]:
    """The commit, the dirty flag and the untracked files, and the patch that recreates the tree:
    ``git diff HEAD`` (staged and unstaged changes to tracked files) plus small untracked text files."""
    top = git(root, "rev-parse", "--show-toplevel")
    commit = git(root, "rev-parse", "HEAD")
    if top is None or commit is None:
        return {"commit": None, "dirty": None, "root": None, "untracked": None, "patch": None}, ""
    top_dir = Path(top.strip())
    status = git(top_dir, "status", "--porcelain", "--untracked-files=all") or ""
    untracked = [line[3:] for line in status.splitlines() if line.startswith("?? ")]
    dirty = bool(status.strip())
    patch = (git(top_dir, "diff", "HEAD") or "") if dirty else ""
    extra = [d for name in untracked[:UNTRACKED_MAX_FILES] if (d := new_file_diff(top_dir, name))]
    patch += "".join(extra)
    info = {
        "commit": commit.strip(),
        "dirty": dirty,
        "root": str(top_dir),
        "untracked": untracked,
        "patch": PATCH if patch else None,
    }
    return info, patch


def installed_packages() -> dict[str, str]:
    """name -> version of every installed distribution, read from the ``*.dist-info`` folder names on
    sys.path (editable installs included)."""
    packages: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and "-" in name:
                dist, version = name[: -len(".dist-info")].split("-", 1)
                packages.setdefault(dist.replace("_", "-").lower(), version)
    return dict(sorted(packages.items()))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions_and_hardware() -> dict[str, Any]:
    import lightning
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
    }


def collect(run_id: str | None = None, root: Path | None = None) -> tuple[dict[str, Any], str]:
    """The provenance dict and the git patch (empty when the tree is clean)."""
    git_info, patch = git_state(root or code_root())
    provenance = {
        "run_id": run_id,  # the trackers' id of this run: a resume from its checkpoints reuses it
        "command": shlex.join([sys.executable, *sys.argv]),
        "cwd": os.getcwd(),
        "git": git_info,
        **versions_and_hardware(),
        "packages": installed_packages(),
    }
    return provenance, patch


def write(output_dir: Path, provenance: dict[str, Any], patch: str) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    if patch:
        (output_dir / PATCH).write_text(patch)
    path = output_dir / PROVENANCE
    path.write_text(json.dumps(provenance, indent=2))
    return path


def read(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / PROVENANCE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
