# Sourced by tools/gpu_experiments.sh and tools/gpu_train.sh on a borrowed GPU machine: put the pieces
# packed by tools/gpu_experiments_pack.sh back where runs look for them, and share the GPU between runs.
# Each function prints its one-line complaint and returns 2 on failure; the caller says whose it is.

# unpack_parts PARTS_DIR: part-* files (in PARTS_DIR or its subfolders p1, p2, ...) make one tar of cache/
# (to out/cache, where the cache keys of the developer machine's runs point) and models/ (to
# ../shared/data/models, never over a real one).
unpack_parts() {
  local parts=$1 pieces
  pieces=$(ls "$parts"/part-* "$parts"/p*/part-* 2>/dev/null | awk -F/ '{print $NF, $0}' | sort | cut -d' ' -f2)
  [ -n "$pieces" ] || { echo "no part-* files in $parts" >&2; return 2; }
  mkdir -p out ../shared/data
  cat $pieces | tar -x -C out || { echo "the parts in $parts do not make one tar" >&2; return 2; }
  if [ ! -d ../shared/data/models ]; then mv out/models ../shared/data/models; fi
}

# start_mps PYTHON: CUDA's multi-process service when the machine has it and a CUDA call works under it;
# without it, runs in several processes take turns on the GPU instead of sharing it (docs/gpu-check.md).
start_mps() {
  if command -v nvidia-cuda-mps-control >/dev/null 2>&1 && nvidia-cuda-mps-control -d 2>/dev/null; then
    if timeout 60 "$1" -c "import torch; x = torch.ones(4, device='cuda'); assert float(x.sum()) == 4"; then
      echo "MPS on"
    else
      echo quit | nvidia-cuda-mps-control; echo "MPS refused a CUDA call; runs take turns"
    fi
  else
    echo "no MPS; runs take turns on the GPU"
  fi
}

stop_mps() {
  echo quit | nvidia-cuda-mps-control 2>/dev/null
  return 0
}
