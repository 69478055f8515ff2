#!/usr/bin/env bash
# The engine's GPU check (issue 2), as one run on a lent GPU machine that has JAX but no Keras:
#   carry .whl (keras, namex, optree wheels for Python 3.12; see BENCHMARKS.md) and run
#   bash benchmarks/gpu_check.sh [--engine-only]
# It prints the card, checks the JAX engine on it (a linear model at both matmul precisions,
# completeness on the CNN), times where the CNN's time goes, then prints the throughput table
# at the GPU sizes (--engine-only skips its slow references). Logs go to $OUT when it is set.
set -euo pipefail
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
log=${OUT:-/tmp}/gpu_check.log
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), '| keras', keras.__version__)"
  python3 benchmarks/gpu_probe.py
  python3 benchmarks/ig_throughput.py --gpu-sizes --repeats 20 "$@"
} 2>&1 | tee "$log"
