# Sourced by tools/gpu_experiments.sh and tools/gpu_train.sh on a borrowed GPU machine: put the pieces
# packed by tools/gpu_experiments_pack.sh back where runs look for them, and share the GPU between runs.
# Each function takes the caller's name first and starts every line it prints with it; a failure is one
# line on stderr and status 2.

# unpack_parts NAME PARTS_DIR: part-* files (in PARTS_DIR or its subfolders p1, p2, ...) make one tar of cache/
# (to out/cache, where the cache keys of the developer machine's runs point) and models/ (to
# ../shared/data/models, never over a real one).
unpack_parts() {
  local name=$1 parts=$2 pieces
  pieces=$(ls "$parts"/part-* "$parts"/p*/part-* 2>/dev/null | awk -F/ '{print $NF, $0}' | sort | cut -d' ' -f2)
  [ -n "$pieces" ] || { echo "$name: no part-* files in $parts" >&2; return 2; }
  mkdir -p out ../shared/data
  cat $pieces | tar -x -C out || { echo "$name: the parts in $parts do not make one tar" >&2; return 2; }
  if [ ! -d ../shared/data/models ]; then mv out/models ../shared/data/models; fi
}

# start_mps NAME PYTHON: CUDA's multi-process service when the machine has it and a CUDA call works under it;
# without it, runs in several processes take turns on the GPU instead of sharing it (docs/gpu-check.md).
start_mps() {
  if command -v nvidia-cuda-mps-control >/dev/null 2>&1 && nvidia-cuda-mps-control -d 2>/dev/null; then
    if timeout 60 "$2" -c "import torch; x = torch.ones(4, device='cuda'); assert float(x.sum()) == 4"; then
      echo "$1: MPS on"
    else
      echo quit | nvidia-cuda-mps-control; echo "$1: MPS refused a CUDA call; runs take turns"
    fi
  else
    echo "$1: no MPS; runs take turns on the GPU"
  fi
}

stop_mps() {
  echo quit | nvidia-cuda-mps-control 2>/dev/null
  return 0
}
