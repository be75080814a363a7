#!/usr/bin/env bash
# harness on a CUDA GPU: installs the GPU builds (unless --no-install), runs the parity matrix
# and the step-time benchmark on the GPU for every backend (TF32 off and on), measures the
# kernel-launch floor, writes results/benchmarks/gpu-<GPU model>.md. Refuses (exit 2) without
# a GPU. Options: --no-install, --out DIR, --parity-epochs N, --bench-epochs N, --name NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m harness.tools.gpu_check "$@"
