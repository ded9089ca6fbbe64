#!/usr/bin/env bash
# seedvar end to end on a GPU: `seedvar sweep` of identical seeds (the `numerical` source) with
# deterministic kernels on and off, two runs sharing the GPU (--jobs 2); then one run killed with
# SIGKILL mid-training and resumed, which must end with the same weights; then `seedvar report`.
#
#   benchmarks/gpu_sweep.sh DATA_ROOT OUT_DIR        (DEVICE=cpu and EXTRA="--epochs 2" for a dry check)
set -euo pipefail
root=$(realpath "$1"); out=$(realpath "$2"); device=${DEVICE:-cuda}; extra=${EXTRA:-}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
cat > "$work/gpu.toml" <<EOF
name = "gpu"
description = "HybridSN, lab data, identical seeds: deterministic vs nondeterministic kernels"
device = "$device"
deterministic = "both"
models = ["hybridsn"]
[dataset]
name = "indian_pines"
pca = 30
window = 25
train_fraction = 0.3
[train]
epochs = 8
batch_size = 128
[seeds]
replicates = 3
vary = ["numerical"]
[test]
passes = 30
EOF
sweep() { ${PY:-python3} -m seedvar sweep "$work/gpu.toml" --data-root "$root" --no-progress $extra "$@"; }
sweep_exec() { exec ${PY:-python3} -m seedvar sweep "$work/gpu.toml" --data-root "$root" --no-progress $extra "$@"; }

echo "== sweep: 3 identical-seed runs with deterministic kernels, 3 without, --jobs 2 on one device"
sweep --tracking-uri "sqlite:///$work/a/mlflow.db" --jobs 2 | tee "$out/sweep.txt"

echo "== kill -9 during training, then resume"
sweep_exec --tracking-uri "sqlite:///$work/b/mlflow.db" --deterministic true --replicates 1 --jobs 1 \
  --checkpoint-every 0 > "$out/killed.txt" 2>&1 &
pid=$!  # python itself (exec), so SIGKILL hits the sweep, not a wrapper shell
until compgen -G "$work/b/checkpoints/*/*.pt" > /dev/null; do sleep 0.1; done
sleep 0.3
kill -9 "$pid"; wait "$pid" || true
sweep --tracking-uri "sqlite:///$work/b/mlflow.db" --deterministic true --replicates 1 --jobs 1 | tee "$out/resumed.txt"

${PY:-python3} - "$work" <<'EOF' | tee "$out/hashes.txt"
import sys
from mlflow import MlflowClient

def runs(store):
    c = MlflowClient(f"sqlite:///{sys.argv[1]}/{store}/mlflow.db")
    e = c.get_experiment_by_name("gpu")
    return c.search_runs([e.experiment_id], "tags.`seedvar.kind` = 'run'")

a, b = runs("a"), runs("b")
for r in sorted(a, key=lambda r: r.info.run_name):
    print(f"{r.info.run_name:32s} {r.info.status:8s} {r.data.tags['seedvar.weights_sha256'][:16]}")
det = {r.data.tags["seedvar.weights_sha256"] for r in a if r.data.tags["seedvar.deterministic"] == "true"}
nondet = {r.data.tags["seedvar.weights_sha256"] for r in a if r.data.tags["seedvar.deterministic"] == "false"}
(resumed,) = b
print(f"deterministic: {len(det)} distinct sha256 over 3 runs; nondeterministic: {len(nondet)} over 3")
print(f"killed and resumed run: {resumed.info.status}, resumed from epoch "
      f"{resumed.data.tags.get('seedvar.resumed_from_epoch', 'none')}, "
      f"same weights as the uninterrupted runs: {resumed.data.tags['seedvar.weights_sha256'] in det}")
EOF
${PY:-python3} -m seedvar report --experiment gpu --tracking-uri "sqlite:///$work/a/mlflow.db" --out "$out/report"
