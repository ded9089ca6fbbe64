#!/usr/bin/env bash
# The published numbers on a GPU, in one call of the `device` tool (issue: "reproduced on a GPU through
# seedvar sweep"). Prepare once on a machine with PyPI: benchmarks/gpu_wheels.sh. Then:
#
#   device run (carry .gpu-wheels, timeout 600):  bash benchmarks/gpu_paper.sh "$OUT" 560
#
# Phases, most important first, each bounded by what is left of BUDGET seconds (default 560) and each
# writing its results to OUT at once (a later phase cut short loses nothing earlier); a sweep is
# resumable, so a second call with the same store continues where the first stopped:
#   1. studies/paper.toml: 10 seeds, deterministic and not, 4 runs per GPU; `seedvar report`
#   2. studies/lab.toml: the same
#   3. benchmarks/gpu_sweep.sh: identical seeds with/without deterministic kernels, kill -9 and resume
#   4. benchmarks/executors.py --device cuda: --runs-per-gpu 4 against 1
# DEVICE=cpu EXTRA="--epochs 1 --replicates 2 --set dataset.test_per_class=5" runs it as a CPU dry run.
set -uo pipefail
out=$(realpath "${1:?OUT folder}"); budget=${2:-560}; device=${DEVICE:-cuda}; extra=${EXTRA:-}
cd "$(dirname "$0")/.."
start=$SECONDS
left() { echo $(( budget - (SECONDS - start) )); }
mkdir -p "$out"
exec > >(tee -a "$out/gpu_paper.log") 2>&1

# The device image has Python 3.12 with torch; seedvar's other needs come from the carried wheels.
PY=${PY:-python3}
if ! "$PY" -c "import mlflow, tensorly" 2>/dev/null; then
  "$PY" -m venv --system-site-packages /tmp/seedvar-venv
  /tmp/seedvar-venv/bin/pip install -q --no-index --find-links .gpu-wheels "mlflow==3.17.2" tensorly || exit 1
  PY=/tmp/seedvar-venv/bin/python
fi
PYTHONPATH=$("$PY" benchmarks/source_tree.py /tmp/seedvar-src) || exit 1  # seedvar without installing it
export PY PYTHONPATH OMP_NUM_THREADS=4
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
store=${STORE:-/tmp/seedvar-store}

study() {  # study NAME: sweep (bounded by the time left), then its report, packed into OUT
  local name=$1 t; t=$(left)
  echo "== $name: $t s left"
  [ "$t" -gt 60 ] || { echo "skipped $name: not enough time"; return; }
  timeout --signal=INT $(( t - 45 )) "$PY" -m seedvar sweep "studies/$name.toml" --device "$device" \
    --tracking-uri "sqlite:///$store/mlflow.db" --runs-per-gpu 4 --no-progress $extra | tee "$out/$name-sweep.txt"
  "$PY" -m seedvar report --experiment "$name" --tracking-uri "sqlite:///$store/mlflow.db" --out "/tmp/report-$name" \
    && tar -C /tmp -czf "$out/$name-report.tar.gz" "report-$name"
}
study paper
study lab
t=$(left); echo "== gpu_sweep.sh: $t s left"
if [ "$t" -gt 120 ]; then
  mkdir -p /tmp/gpu-sweep && DEVICE=$device timeout $(( t - 60 )) bash benchmarks/gpu_sweep.sh /nonexistent /tmp/gpu-sweep \
    && tar -C /tmp -czf "$out/gpu-sweep.tar.gz" gpu-sweep
fi
t=$(left); echo "== executors.py: $t s left"
[ "$t" -gt 90 ] && [ "$device" = cuda ] && timeout $(( t - 20 )) "$PY" benchmarks/executors.py --device cuda | tee "$out/executors.txt"
echo "gpu_paper.sh: done in $(( SECONDS - start )) s"
