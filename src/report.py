"""Report a sweep: `python src/report.py <sweep dir> [--out DIR] [--metric test/acc] [--curves 3]`.

Writes results.{md,tex,csv}, summary.csv and the figures as PNG and PDF (see litlab.sweeps.report).
"""

import argparse
import sys
from pathlib import Path

import litlab  # noqa: F401  (first: torchvision shim)
from litlab.errors import LitlabError
from litlab.sweeps.report import DEFAULT_METRICS, write_report
from litlab.sweeps.summary import parse_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the multirun's hydra.sweep.dir")
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep dir)")
    parser.add_argument("--metric", default="test/acc", help="metric of the plot and of the curves' ranking")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help="table columns, comma-separated")
    parser.add_argument("--curves", type=int, default=3, help="learning curves of the best N configurations")
    parser.add_argument(
        "--baseline",
        help="the arm to compare with, key=value (default: the study's `baseline` in multirun.yaml)",
    )
    args = parser.parse_args()
    try:
        path = write_report(
            args.sweep_dir,
            args.out,
            tuple(args.metrics.split(",")),
            args.metric,
            args.curves,
            parse_baseline(args.baseline) if args.baseline else None,
        )
    except (LitlabError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    print(path.read_text())
    print(f"wrote {path.parent}/results.{{md,tex,csv,png,pdf}} and summary.csv")


if __name__ == "__main__":
    main()
