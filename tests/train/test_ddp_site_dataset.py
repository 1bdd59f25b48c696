"""The site loop's fine-tuning under torchrun: two CPU ranks (gloo) train from the bundled checkpoint on a
folder dataset built by ``edgefas dataset build``, sharing one cold samples cache, and rank 0 writes the model.

This is the command docs/site-loop.md gives for several GPUs or nodes, at world size 2 on one machine:
``torchrun --nproc-per-node 2 -m edge.cli.app train --init ... --dataset folder:DATASET``; the workers
here set the same variables torchrun sets and call the function ``edgefas train`` calls.
"""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")

import torch.distributed  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from free_port import free_port  # noqa: E402

WORLD = 2
STEPS = 2


def _worker(rank: int, port: int, dataset: str, out: str, cache: str) -> None:
    from engines.bundled import MODELS_DIR
    from train.run import TrainJob, run_training

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    job = TrainJob(dataset=f"folder:{dataset}", init=MODELS_DIR / "edge-synthetic.pt", out_dir=out, steps=STEPS,
                   batch_size=4, cache_dir=cache, detector="haar", threads=1)
    summary = run_training(job)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
        json.dump({"steps": summary.steps, "train": summary.train_samples, "dev": summary.dev_samples}, fh)


@pytest.fixture(scope="module")
def site_dataset(tmp_path_factory):
    """Three subjects, live and print, three rendered frames each: sessions, then the folder dataset."""
    from edge.capture.source import SourceOptions, open_source
    from edge.collect.session import TakeMeter, take_software
    from edge.collect.sidecar import new_session_info
    from edge.datasets.build import build_dataset, read_sessions
    from edge.face.finder import open_face_finder
    from edge.face.preprocess import PreprocessConfig

    root = tmp_path_factory.mktemp("site")
    config = PreprocessConfig()
    finder = open_face_finder("haar", None, config.detect_width_px)
    folders = []
    for k, subject in enumerate(("s01", "s02", "s03")):
        for label in ("live", "print"):
            folder = root / "sessions" / f"{subject}-{label}"
            with open_source(f"synthetic:{label}", SourceOptions(seed=20 + k, max_frames=3)) as source:
                take_software(source, folder, new_session_info(subject, label, "lab"), 3, TakeMeter(finder, config))
            folders.append(folder)
    build_dataset(read_sessions(folders), root / "dataset", finder, config)
    return root / "dataset"


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_two_ranks_fine_tune_on_a_built_folder_dataset(site_dataset, tmp_path):
    from train.checkpoint import load_checkpoint
    from engines.bundled import MODELS_DIR

    out, cache = tmp_path / "run", tmp_path / "cache"
    out.mkdir()
    mp.spawn(_worker, args=(free_port(), str(site_dataset), str(out), str(cache)), nprocs=WORLD, join=True)
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert [r["steps"] for r in ranks] == [STEPS, STEPS]
    assert ranks[0]["train"] == ranks[1]["train"] > 0 and ranks[0]["dev"] > 0  # both read the same split
    assert sorted(p.name.split("-")[1] for p in cache.glob("*.npz")) == ["dev", "train"]  # one cache per split
    assert not list(cache.glob("*.partial*"))
    tuned, info = load_checkpoint(out / "model.pt")  # rank 0 calibrated and wrote the model
    start, _ = load_checkpoint(MODELS_DIR / "edge-synthetic.pt")
    assert info.step == STEPS
    moved = [not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), start.state_dict().values())]
    assert any(moved), "the ranks' steps did not change the bundled weights"
