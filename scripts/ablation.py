"""`make ablation STUDY=<name>`: run one study's sweep (conf/ablation/<name>.yaml) and regenerate
experiments/<name>/ (results.md/.tex, results.csv, summary.csv, results/curves .png/.pdf and the table
in its README).

The sweep runs with resume=true in logs/ablations/<name>, so an interrupted study continues where it
stopped and a finished one only regenerates its report.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from omegaconf import OmegaConf  # noqa: E402

import litlab  # noqa: E402, F401
from litlab.sweeps.report import write_report  # noqa: E402
from litlab.sweeps.summary import parse_baseline  # noqa: E402

REPORT_OPTIONS = {  # study -> write_report keyword arguments
    "optimisers": {"curves": 4},
    "activations": {"curves": 4},
    "depth_vs_width": {"curves": 5},
    "speedrun": {"curves": 0},  # no validation split, so no val/acc curves; the table is the result
}
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(p.stem for p in (ROOT / "conf" / "ablation").glob("*.yaml")))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--report-only", action="store_true", help="skip the sweep, rebuild the report")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job")
    args = parser.parse_intermixed_args()
    sweep_dir = ROOT / "logs" / "ablations" / args.study
    if not args.report_only:
        command = [
            sys.executable,
            str(ROOT / "src" / "train.py"),
            "-m",
            f"ablation={args.study}",
            "resume=true",
        ]
        command += [
            f"paths.data_dir={args.data_dir.resolve()}",
            f"hydra.sweep.dir={sweep_dir}",
            *args.overrides,
        ]
        print("$", " ".join(command[1:]), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)
    out_dir = ROOT / "experiments" / args.study
    # the study's baseline from its config, so a sweep run before the key existed is compared too
    study_cfg = OmegaConf.load(ROOT / "conf" / "ablation" / f"{args.study}.yaml")
    options = {"baseline": parse_baseline(study_cfg.get("baseline")), **REPORT_OPTIONS.get(args.study, {})}
    table = write_report(sweep_dir, out_dir, **options).read_text()
    readme = out_dir / "README.md"
    body = table.split("\n", 2)[2].replace(f"{sweep_dir.name}", args.study)  # drop the report's title
    text = readme.read_text()
    text = re.sub(f"{BEGIN}.*{END}", lambda _: f"{BEGIN}\n{body}{END}", text, flags=re.S)
    readme.write_text(text)
    print(f"wrote {out_dir}/")


if __name__ == "__main__":
    main()
