#!/usr/bin/env bash
# Train several `edgefas train` runs at once on a borrowed GPU machine for a fixed time, and pack their
# last checkpoints for the trip back; ship them on the developer machine.
#
#   tools/gpu_train.sh PARTS_DIR MINUTES PACK_DIR RUNS_FILE
#
# (Relative paths are read from the repository root, where the script runs.)
# PARTS_DIR: the training and dev caches and the face detector in pieces (tools/gpu_experiments_pack.sh;
# one device call carries each piece to the same folder there; this call unpacks them all).
# RUNS_FILE: one run a line, `NAME ARGS...`, ARGS the run's `edgefas train` options (data, recipe,
# --init); `#` lines and blank lines are skipped. Each run gets --out runs/NAME --time-limit MINUTES
# --checkpoint-only: it stops at the first step after MINUTES of training and writes runs/NAME/last.pt
# without calibrating on dev (that would take minutes of the lease on its CPUs). The runs share the GPU
# (CUDA's multi-process service when it works there) and make their batches on the machine's cores.
# PACK_DIR receives NAME.tar.part-aa, -ab, ... (pieces of at most 15 MiB: a call brings back files of
# at most 16 MiB) with last.pt, metrics.csv and log.txt; a line per run says the step it reached.
# Back here: unpack, then `edgefas train --resume --steps <step> --out runs/NAME` with the run's
# --dataset and --dev-dataset ships each (BatchNorm statistics, alpha and threshold, model.pt).
set -u
cd "$(dirname "$0")/.."
if [ $# -ne 4 ]; then
  echo "usage: tools/gpu_train.sh PARTS_DIR MINUTES PACK_DIR RUNS_FILE" >&2
  exit 2
fi
parts=$1 minutes=$2 pack=$3 runs_file=$4
[[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] && [ "$minutes" != 0 ] || {
  echo "gpu_train: MINUTES must be a positive number, got '$minutes'" >&2; exit 2; }
[ -f "$runs_file" ] || { echo "gpu_train: no runs file $runs_file (lines of NAME ARGS...)" >&2; exit 2; }
PY=${PYTHON:-python3}
. tools/gpu_lease.sh
unpack_parts gpu_train "$parts" || exit 2
mkdir -p "$pack"
start_mps gpu_train "$PY"

export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
names=() pids=()
while read -r name args; do
  case "$name" in ''|'#'*) continue ;; esac
  mkdir -p "runs/$name"
  # shellcheck disable=SC2086  # ARGS are words of the runs file
  "$PY" -m edge.cli.app train $args --out "runs/$name" --time-limit "$minutes" --checkpoint-only \
    > "runs/$name/log.txt" 2>&1 &
  names+=("$name") pids+=($!)
done < "$runs_file"
[ ${#names[@]} -gt 0 ] || { echo "gpu_train: $runs_file names no run" >&2; stop_mps; exit 2; }
started=$(date +%s)
for i in "${!names[@]}"; do
  wait "${pids[$i]}"
  echo "gpu_train: ${names[$i]} exit $? after $(( $(date +%s) - started )) s"
done
stop_mps

for name in "${names[@]}"; do
  run=runs/$name
  step=$(tail -n 1 "$run/metrics.csv" 2>/dev/null | cut -d, -f1)
  echo "gpu_train: $run reached step ${step:-none}"
  files=()
  for f in last.pt metrics.csv log.txt; do [ -f "$run/$f" ] && files+=("$run/$f"); done
  tar -c "${files[@]}" | split -b 15M - "$pack/$name.tar.part-"
done
ls -la "$pack"
