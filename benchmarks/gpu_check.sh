#!/usr/bin/env bash
# One prepared check for a machine with an NVIDIA GPU: the zero-sync check of ordinary
# steps, CPU/CUDA parity of the findings, the overhead benchmark on CUDA with peak device
# memory, and where the per-step cost goes. Run from the repository root after
# `make install`, or with any Python that has torch with CUDA and scikit-learn:
#     PY=python3 PYTHONPATH=. benchmarks/gpu_check.sh
# BENCH_SECONDS caps the benchmark's wall time (default 480), BENCH_STEPS sets its length.
set -uo pipefail
PY=${PY:-.venv/bin/python}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import torch, platform; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'python', platform.python_version())" || exit 1
"$PY" -c "import os; print('CPU cores', os.cpu_count())"
"$PY" benchmarks/gpu_sync_check.py
sync=$?
timeout "${BENCH_SECONDS:-480}" "$PY" benchmarks/overhead.py --device cuda --repeats 5 --steps "${BENCH_STEPS:-600}" --short
bench=$?
timeout 120 "$PY" benchmarks/profile_steps.py --device cuda --models mlp,cnn
echo "sync check exit $sync, benchmark exit $bench"
exit $(( sync || bench ))
