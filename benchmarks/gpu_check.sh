#!/usr/bin/env bash
# GPU readiness in one short run (a few minutes on one GPU): the gpu-marked tests, then tokens/s and
# MFU of the 1m proxy at GPT-NeoX's vocabulary and the paper's batch, for one proxy and K stacked,
# then one proxy composed with +experiment=paper_1m and fed from a prepared BPE corpus (tokens/s,
# MFU and the share of the step spent waiting for data).
# Without CUDA the gpu tests skip and the throughput part says so; `--smoke` runs that part's code at a
# tiny size on CPU instead (what CI runs).
#
#   bash benchmarks/gpu_check.sh [--smoke] [gpu_throughput.py options, e.g. --k 8 --peak-tflops 989]
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's virtual environment (make setup) when there is one, else the python on PATH.
if [[ -x .venv/bin/python ]]; then default_python=.venv/bin/python; else default_python=python; fi
PYTHON="${PYTHON:-$default_python}"
# Only the test files that hold gpu-marked tests: collecting the whole suite costs more than they do.
mapfile -t gpu_tests < <(grep -l "mark.gpu" tests/test_*.py)
"$PYTHON" -m pytest -q -m gpu -p no:cacheprovider "${gpu_tests[@]}"
"$PYTHON" benchmarks/gpu_throughput.py "$@"
"$PYTHON" benchmarks/gpu_bpe_proxy.py "$@"
