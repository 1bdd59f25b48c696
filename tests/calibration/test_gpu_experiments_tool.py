"""tools/gpu_experiments_pack.sh and tools/gpu_experiments.sh: training caches cut into pieces that each
fit one device call and put back together there, runs stopped at the deadline, and what the runs made
(a finished run's model, an unfinished run's last checkpoint) packed for the trip back. The training
itself is replaced by a stand-in Python that writes run folders, so this runs without a GPU. tools/gpu_train.sh
likewise: each line of a runs file one `edgefas train` stopped at a time limit, its checkpoint packed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "tools" / "gpu_experiments_pack.sh"
RUN = REPO / "tools" / "gpu_experiments.sh"


def sh(*args, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *map(str, args)], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=60)


@pytest.fixture()
def pieces(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """Two cache files and a detector folder, packed in pieces of 1 MiB."""
    rng = __import__("random").Random(7)
    caches = {"photo-train-x.npz": rng.randbytes(1_700_000), "photo-dev-y.npz": rng.randbytes(600_000)}
    for name, data in caches.items():
        (tmp_path / name).write_bytes(data)
    models = tmp_path / "models"
    models.mkdir()
    (models / "face_detection_yunet.onnx").write_bytes(b"yunet")
    done = sh(PACK, tmp_path / "xfer", 1, models, *(tmp_path / n for n in caches))
    assert done.returncode == 0, done.stderr
    return tmp_path / "xfer", caches


def test_the_pieces_each_fit_a_call_and_make_the_caches_again(pieces, tmp_path):
    xfer, caches = pieces
    folders = sorted(xfer.iterdir())
    assert [f.name for f in folders] == ["p1", "p2", "p3"]  # 2.3 MB of data and tar headers in 1 MiB pieces
    parts = [p for f in folders for p in f.iterdir()]
    assert all(p.stat().st_size <= 1 << 20 for p in parts)
    joined = tmp_path / "joined.tar"
    joined.write_bytes(b"".join(p.read_bytes() for p in sorted(parts, key=lambda p: p.name)))
    with tarfile.open(joined) as tar:
        for name, data in caches.items():
            assert tar.extractfile(f"cache/{name}").read() == data  # the file, not the packing machine's link
        assert tar.extractfile("models/face_detection_yunet.onnx").read() == b"yunet"


def test_pack_refuses_a_missing_cache_in_one_line(tmp_path):
    (tmp_path / "models").mkdir()
    done = sh(PACK, tmp_path / "xfer", 1, tmp_path / "models", tmp_path / "nope.npz")
    assert done.returncode == 2 and done.stderr.strip() == f"gpu_experiments_pack: no cache file {tmp_path / 'nope.npz'}"


STAND_IN = """#!/usr/bin/env bash
# stands in for python3: one run finishes, one is still training when the deadline comes
[ "$1" = "tools/experiments.py" ] || exit 3
echo "$@" > args.txt
mkdir -p runs/gpu/done runs/gpu/half
printf 'step,generator\\n400,1.0\\n' > runs/gpu/done/metrics.csv
echo model > runs/gpu/done/model.pt
echo onnx > runs/gpu/done/model.onnx
printf 'step,generator\\n100,1.0\\n' > runs/gpu/half/metrics.csv
echo checkpoint > runs/gpu/half/last.pt
exec sleep 30
"""


def test_the_runs_stop_at_the_deadline_and_what_they_made_is_packed(pieces, tmp_path):
    xfer, caches = pieces
    repo = tmp_path / "machine" / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(RUN, repo / "tools")
    shutil.copy(REPO / "tools" / "gpu_lease.sh", repo / "tools")
    python = tmp_path / "python3"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    done = sh(repo / "tools" / "gpu_experiments.sh", xfer, 3, tmp_path / "pack", "--", "--only", "photo-rgbd",
              "--out", "runs/gpu", cwd=repo, env={"PYTHON": str(python), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert (repo / "out" / "cache" / "photo-train-x.npz").read_bytes() == caches["photo-train-x.npz"]
    assert (tmp_path / "machine" / "shared" / "data" / "models" / "face_detection_yunet.onnx").is_file()
    assert (repo / "args.txt").read_text().split() == ["tools/experiments.py", "--train-only", "--only",
                                                        "photo-rgbd", "--out", "runs/gpu"]
    assert "runs/gpu/done finished (last logged step 400)" in done.stdout
    assert "runs/gpu/half unfinished (last logged step 100); packing last.pt" in done.stdout
    packed = list((tmp_path / "pack").glob("runs.tar.part-*"))
    assert len(packed) == 1
    with tarfile.open(packed[0]) as tar:
        names = set(tar.getnames())
    assert {"runs/gpu/done/model.pt", "runs/gpu/done/model.onnx", "runs/gpu/half/last.pt"} <= names
    assert "runs/gpu/done/last.pt" not in names


def test_run_refuses_a_call_without_its_separator_or_its_pieces(tmp_path):
    done = sh(RUN, tmp_path, 10, tmp_path / "pack")
    assert done.returncode == 2 and done.stderr.startswith("usage: tools/gpu_experiments.sh")
    done = sh(RUN, tmp_path, "10m", tmp_path / "pack", "--")
    assert done.returncode == 2 and done.stderr.strip() == "gpu_experiments: DEADLINE_S must be whole seconds, got '10m'"
    done = sh(RUN, tmp_path / "empty", 10, tmp_path / "pack", "--")
    assert done.returncode == 2 and done.stderr.strip() == f"gpu_experiments: no part-* files in {tmp_path / 'empty'}"


TRAIN = REPO / "tools" / "gpu_train.sh"

TRAIN_STAND_IN = """#!/usr/bin/env bash
# stands in for python3 -m edge.cli.app train: records its words, leaves a checkpoint at a step of its own
[ "$1 $2 $3" = "-m edge.cli.app train" ] || exit 3
out=""; prev=""
for a in "$@"; do [ "$prev" = "--out" ] && out=$a; prev=$a; done
echo "$@" > "$out/args.txt"
case "$out" in *long) step=1700 ;; *) step=900 ;; esac
printf 'step,generator\\n%s,1.0\\n' "$step" > "$out/metrics.csv"
head -c 3000 /dev/urandom > "$out/last.pt"
echo "stopped at step $step"
"""


def test_train_runs_each_line_for_its_minutes_and_packs_each_checkpoint(pieces, tmp_path):
    xfer, caches = pieces
    repo = tmp_path / "machine" / "repo"
    (repo / "tools").mkdir(parents=True)
    for script in (TRAIN, REPO / "tools" / "gpu_lease.sh"):
        shutil.copy(script, repo / "tools")
    python = tmp_path / "python3"
    python.write_text(TRAIN_STAND_IN)
    python.chmod(0o755)
    runs = tmp_path / "runs.txt"
    runs.write_text("# name, then edgefas train options\nlong --dataset photo:3000 --steps 9000 --seed 1\n\n"
                    "short --dataset synthetic:4000 --steps 9000 --species-mix hard\n")
    done = sh(repo / "tools" / "gpu_train.sh", xfer, 6.5, tmp_path / "pack", runs, cwd=repo,
              env={"PYTHON": str(python), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert (repo / "out" / "cache" / "photo-dev-y.npz").read_bytes() == caches["photo-dev-y.npz"]
    assert (repo / "runs" / "long" / "args.txt").read_text().split() == [
        "-m", "edge.cli.app", "train", "--dataset", "photo:3000", "--steps", "9000", "--seed", "1",
        "--out", "runs/long", "--time-limit", "6.5", "--checkpoint-only"]
    assert "--species-mix hard --out runs/short" in (repo / "runs" / "short" / "args.txt").read_text()
    assert "gpu_train: runs/long reached step 1700" in done.stdout
    assert "gpu_train: runs/short reached step 900" in done.stdout
    for name in ("long", "short"):
        packed = sorted((tmp_path / "pack").glob(f"{name}.tar.part-*"))
        assert len(packed) == 1
        with tarfile.open(packed[0]) as tar:
            assert set(tar.getnames()) == {f"runs/{name}/{f}" for f in ("last.pt", "metrics.csv", "log.txt")}
            assert "stopped at step" in tar.extractfile(f"runs/{name}/log.txt").read().decode()


def test_train_refuses_bad_minutes_a_missing_runs_file_and_missing_arguments_before_unpacking(pieces, tmp_path):
    xfer, _ = pieces
    done = sh(TRAIN, xfer, "7m", tmp_path / "pack", tmp_path / "runs.txt")
    assert done.returncode == 2 and done.stderr.strip() == "gpu_train: MINUTES must be a positive number, got '7m'"
    done = sh(TRAIN, xfer, 7, tmp_path / "pack", tmp_path / "runs.txt")
    assert done.returncode == 2 and "no runs file" in done.stderr
    done = sh(TRAIN, xfer, 7, tmp_path / "pack")
    assert done.returncode == 2 and done.stderr.startswith("usage: tools/gpu_train.sh")
