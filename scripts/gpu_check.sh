#!/usr/bin/env bash
# The GPU check in one command, for a lent GPU machine: `bash scripts/gpu_check.sh` (results in $OUT).
# The device image has torch, lightning, timm, torchmetrics, matplotlib, rich, pandas and scipy but no
# hydra-core, omegaconf or antlr4: `make gpu-wheels` puts them in .whl/ here, and the device call
# carries .whl. Rehearsed on CPU by tests/test_gpu_check.py (--accelerator cpu --size tiny).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/litlab-gpu-check}
mkdir -p "$OUT"
if ! python3 -c "import hydra, omegaconf" 2>/dev/null; then
  [ -d .whl ] || { echo "error: hydra-core is missing and there is no .whl/ folder; run make gpu-wheels and carry .whl" >&2; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/litlab-site .whl/*.whl || exit 2
  export PYTHONPATH="/tmp/litlab-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/nvidia-smi.csv" 2>/dev/null || true
python3 scripts/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
