"""Shared by `make results` and `make bench`: run train.py for real and collect section files.

Each section module in scripts/results/ or scripts/bench/ has ``TITLE`` and ``run(data_dir) -> str``
(markdown). Its output is kept in results/<name>.md or benchmarks/<name>.md, so rerunning one section
(``--only name``) keeps the others; the top-level file is reassembled from all of them. A module with
``OPT_IN = True`` (an hour-long measurement) runs only when named in ``--only``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(
    overrides: list[str], run_dir: Path, script: str = "train", env: dict[str, str] | None = None
) -> dict:
    """Run src/<script>.py in a subprocess (a real run, as a user would) and return its metrics.json."""
    shutil.rmtree(run_dir, ignore_errors=True)  # a stale checkpoint from an earlier run must not count
    command = [sys.executable, str(ROOT / "src" / f"{script}.py"), *overrides, f"hydra.run.dir={run_dir}"]
    print("$", " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"run failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["process_time_s"] = round(time.perf_counter() - start, 1)
    return metrics


def machine() -> str:
    import torch

    from litlab.utils.resolvers import auto_precision

    cpu = "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = f"{names[0]} x{len(names)}" if names else cpu
    # the vector unit decides the precision (bf16 autocast only where the CPU runs bf16) and the speed:
    # figures from machines of another capability are not comparable
    capability = torch.backends.cpu.get_cpu_capability()
    precision = auto_precision("cpu")
    threads = torch.get_num_threads()
    return (
        f"{cpu} ({capability}, precision {precision}), {threads} torch threads, "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


def assemble(kind: str, title: str, intro: str) -> None:
    """Run the chosen section modules of scripts/<kind>/ and rebuild <TITLE>.md from all section files."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--only", nargs="*", help="section names to rerun (default: all)")
    args = parser.parse_args()
    section_dir = ROOT / {"results": "results", "bench": "benchmarks"}[kind]
    section_dir.mkdir(exist_ok=True)
    modules = sorted((ROOT / "scripts" / kind).glob("[!_]*.py"))
    for path in modules:
        if args.only and path.stem not in args.only:
            continue
        spec = importlib.util.spec_from_file_location(f"{kind}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, "run"):  # a helper the sections import (probes, startup_clock)
            continue
        if getattr(module, "OPT_IN", False) and not args.only:  # long: run only when named in --only
            print(f"{path.stem}: opt-in, not run (--only {path.stem}); its last file is kept", flush=True)
            continue
        body = module.run(Path(args.data_dir))
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        (section_dir / f"{path.stem}.md").write_text(
            f"## {module.TITLE}\n\nMeasured {stamp} on {machine()}.\n"
            f'Regenerate: `make {kind if kind == "results" else "bench"} ARGS="--only {path.stem}"`.\n\n{body}\n'
        )
    sections = [(section_dir / f"{p.stem}.md") for p in modules if (section_dir / f"{p.stem}.md").exists()]
    text = f"# {title}\n\n{intro}\n\n" + "\n".join(s.read_text() for s in sections)
    (ROOT / f"{title}.md").write_text(text)
    print(f"wrote {title}.md ({len(sections)} sections)")
