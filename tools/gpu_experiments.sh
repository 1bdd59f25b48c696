#!/usr/bin/env bash
# Train runs of tools/experiments.py on a borrowed GPU machine within a deadline, and pack what they made.
#
#   tools/gpu_experiments.sh PARTS_DIR DEADLINE_S PACK_DIR -- [tools/experiments.py options]
#
# (Relative paths are read from the repository root, where the script runs.)
# PARTS_DIR holds part-* files (in it or in its subfolders p1, p2, ...): pieces of one tar (made by tools/gpu_experiments_pack.sh here) with the
# training caches (cache/*.npz) and the face detector (models/); they travel to the machine in pieces,
# one per call, because a call carries at most 64 MiB. The caches go to out/cache and the detector to
# ../shared/data/models, the paths the runs use on the developer machine, so the cache keys match.
#
# CUDA's multi-process service (MPS) is started when the machine has it and a CUDA call works under it:
# without it the runs' processes take turns on the GPU instead of sharing it (docs/gpu-check.md).
# The runs get DEADLINE_S seconds; then whatever is unfinished is stopped. PACK_DIR receives runs.tar
# split into pieces of at most 15 MiB (runs.tar.part-aa, -ab, ...): each run's model.pt, model.onnx, summary.json,
# metrics.csv, train_wall_s.txt and log.txt, and last.pt of a run that did not finish (it continues
# with the same command, which passes --resume). A line per run says how far it got.
set -u
cd "$(dirname "$0")/.."
if [ $# -lt 4 ] || [ "$4" != "--" ]; then
  echo "usage: tools/gpu_experiments.sh PARTS_DIR DEADLINE_S PACK_DIR -- [tools/experiments.py options]" >&2
  exit 2
fi
parts=$1 deadline=$2 pack=$3
shift 4
[[ "$deadline" =~ ^[1-9][0-9]*$ ]] || { echo "gpu_experiments: DEADLINE_S must be whole seconds, got '$deadline'" >&2; exit 2; }
PY=${PYTHON:-python3}
. tools/gpu_lease.sh
unpack_parts gpu_experiments "$parts" || exit 2
ls -la out/cache
mkdir -p "$pack"
start_mps gpu_experiments "$PY"

export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
out_dir=runs/gpu
prev=""
for a in "$@"; do [ "$prev" = "--out" ] && out_dir=$a; prev=$a; done
started=$(date +%s)
timeout "$deadline" "$PY" tools/experiments.py --train-only "$@"
echo "gpu_experiments: experiments.py exit $? after $(( $(date +%s) - started )) s"
stop_mps

files=()
for run in "$out_dir"/*/; do
  run=${run%/}
  step=$(tail -n 1 "$run/metrics.csv" 2>/dev/null | cut -d, -f1)
  if [ -f "$run/model.pt" ]; then
    echo "gpu_experiments: $run finished (last logged step ${step:-?})"
  else
    echo "gpu_experiments: $run unfinished (last logged step ${step:-none}); packing last.pt"
    [ -f "$run/last.pt" ] && files+=("$run/last.pt")
  fi
  for f in model.pt model.onnx summary.json metrics.csv train_wall_s.txt log.txt; do
    [ -f "$run/$f" ] && files+=("$run/$f")
  done
done
if [ ${#files[@]} -gt 0 ]; then
  tar -c "${files[@]}" | split -b 15M - "$pack/runs.tar.part-"
fi
ls -la "$pack"
