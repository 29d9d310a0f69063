#!/usr/bin/env bash
# One prepared check for a machine with an NVIDIA GPU: the overhead benchmark on CUDA and
# the zero-sync check of ordinary steps. Run from the repository root after `make install`
# (or with any Python that has torch with CUDA and nbdebug installed: PY=python3 ...).
set -euo pipefail
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
"$PY" benchmarks/gpu_sync_check.py
"$PY" benchmarks/overhead.py --device cuda --repeats 5 --steps 600 --short
