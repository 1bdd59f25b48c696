#!/usr/bin/env bash
# Pack training caches and the face detector for tools/gpu_experiments.sh, in pieces that each fit one
# device call (a call carries at most 64 MiB with the working tree).
#
#   tools/gpu_experiments_pack.sh DEST PIECE_MB MODEL_DIR CACHE_FILE...
#
# DEST/p1/part-aa, DEST/p2/part-ab, ...: one folder per call (name it in that call's carry). DEST must be
# a folder git ignores (.git/info/exclude): the pieces are data, never part of the project.
set -eu
if [ $# -lt 4 ]; then
  echo "usage: tools/gpu_experiments_pack.sh DEST PIECE_MB MODEL_DIR CACHE_FILE..." >&2
  exit 2
fi
dest=$1 piece=$2 models=$3
shift 3
[ -d "$models" ] || { echo "gpu_experiments_pack: $models is not a folder (the YuNet model's)" >&2; exit 2; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/cache" "$dest"
for f in "$@"; do
  [ -f "$f" ] || { echo "gpu_experiments_pack: no cache file $f" >&2; exit 2; }
  ln -s "$(realpath "$f")" "$stage/cache/$(basename "$f")"
done
cp -r "$models" "$stage/models"
rm -rf "$dest"/p*
tar -ch -C "$stage" cache models | split -b "${piece}M" - "$stage/part-"
i=0
for p in "$stage"/part-*; do
  i=$((i + 1))
  mkdir -p "$dest/p$i"
  mv "$p" "$dest/p$i/"
done
echo "gpu_experiments_pack: $i pieces in $dest ($(du -sh "$dest" | cut -f1))"
