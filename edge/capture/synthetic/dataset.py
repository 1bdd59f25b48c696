"""Write the synthetic world to disk as a folder dataset (DESIGN §8), atomically.

Samples cycle through every scenario so that any count of at least nine covers all of them, half
of the faces live and half attacks. Sample ``i`` of seed ``S`` always renders the same pixels, and
PNG encoding is deterministic, so two runs with the same seed write byte-identical files.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

from edge.capture.folder import COLUMNS, LABELS_FILE
from edge.capture.synthetic.world import SyntheticWorld
from edge.errors import DatasetError

log = logging.getLogger(__name__)

# live is listed four times: as many live samples as attacks, plus a few frames with no face
DATASET_CYCLE = ("live", "print", "live", "replay", "live", "mask", "live", "cutout", "empty")
SEED_STRIDE = 1_000_003  # keeps the per-sample seeds of different dataset seeds apart
# World seeds of the built-in `synthetic:COUNT` dataset's splits (train/datasets/synthetic.py: clip k of
# train/dev/test is rendered from 10M/20M/30M + k, room for 10M clips each). A world seed is the
# subject, so a sample rendered from one of these would show a person of those splits: `synth` output
# used for training would leak test identities. `synth` refuses seeds that would render from them.
SPLIT_SEEDS = range(10_000_000, 40_000_000)


@dataclass(frozen=True)
class DatasetSummary:
    path: Path
    count: int
    per_scenario: dict[str, int]


def sample_seed(dataset_seed: int, index: int) -> int:
    return dataset_seed * SEED_STRIDE + index


def world_seeds(seed: int, count: int, scene: str | None = None) -> range:
    """The world seeds ``count`` samples of dataset seed ``seed`` are rendered from.

    Independent samples each get :func:`sample_seed`; one continuous ``scene`` (``--stream``, or a
    recording) is a single world of ``seed`` itself.
    """
    if scene is not None:
        return range(seed, seed + 1)
    return range(sample_seed(seed, 0), sample_seed(seed, count - 1) + 1)


def check_seed(seed: int, count: int, scene: str | None = None) -> None:
    """Refuse a seed whose samples would show subjects of the built-in synthetic splits (:data:`SPLIT_SEEDS`)."""
    seeds = world_seeds(seed, count, scene)
    if seeds.start >= SPLIT_SEEDS.stop or seeds.stop <= SPLIT_SEEDS.start:
        return
    if scene is None:
        low = max(0, -(-(SPLIT_SEEDS.start - count + 1) // SEED_STRIDE))  # first seed reaching the splits
        high = -(-SPLIT_SEEDS.stop // SEED_STRIDE)
    else:
        low, high = SPLIT_SEEDS.start, SPLIT_SEEDS.stop
    advice = f"below {low} or from {high} up" if low > 0 else f"from {high} up"
    span = f"subject {seeds.start}" if len(seeds) == 1 else f"subjects {seeds.start}..{seeds.stop - 1}"
    raise DatasetError(f"--seed {seed} would render {span}, which the built-in "
                       f"synthetic dataset keeps for its train/dev/test splits ({SPLIT_SEEDS.start}.."
                       f"{SPLIT_SEEDS.stop - 1}); choose a --seed {advice}")


def _remove_stale_partials(parent: Path, name: str) -> None:
    """Remove ``.NAME.partial-PID`` folders whose writer is gone: a run killed with SIGKILL (or a power
    cut) cannot clean up after itself, so the next run for the same folder does."""
    for partial in parent.glob(f".{name}.partial-*"):
        pid = partial.name.rpartition("-")[2]
        if not pid.isdigit() or _process_alive(int(pid)):
            continue
        log.warning("removing '%s', left by an interrupted run (process %s is gone)", partial, pid)
        shutil.rmtree(partial, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def write_synthetic_dataset(out_dir: Path, count: int, seed: int, scenarios: tuple[str, ...] = DATASET_CYCLE,
                            on_sample: Callable[[int], None] | None = None,
                            stream: str | None = None) -> DatasetSummary:
    """Render ``count`` samples into ``out_dir`` (which must not exist yet).

    With ``stream`` (a scenario name), the samples are instead frames 0 .. count-1 of one continuous
    ``synthetic:STREAM`` scene of ``seed``: played back by ``folder:`` they are the same video the
    synthetic source would render, so the decision policy sees tracked faces across frames.

    Everything is written under a temporary sibling folder that is renamed into place only when
    complete, and removed if anything (including Ctrl-C) interrupts the run: a reader never sees a
    half-written dataset.
    """
    out_dir = Path(out_dir)
    if count < 1:
        raise DatasetError(f"--count must be at least 1, got {count}")
    check_seed(seed, count, stream)
    if out_dir.exists():
        raise DatasetError(f"'{out_dir}' already exists; choose a new --out folder (nothing was overwritten)")
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        raise DatasetError(f"cannot write '{out_dir}': its parent folder '{parent}' does not exist")
    _remove_stale_partials(parent, out_dir.name)
    tmp = parent / f".{out_dir.name}.partial-{os.getpid()}"
    per: dict[str, int] = {}
    try:
        (tmp / "color").mkdir(parents=True)
        (tmp / "depth").mkdir()
        rows = []
        continuous = SyntheticWorld(stream, seed) if stream is not None else None
        for i in range(count):
            if continuous is not None:
                frame = continuous.frame(i)
                scenario = frame.truth.scenario if frame.truth is not None else stream
            else:
                scenario = scenarios[i % len(scenarios)]
                world = SyntheticWorld(scenario, sample_seed(seed, i))
                frame = world.frame(i % 30)  # a different moment of each clip: poses vary across samples
            name = f"{i:06d}.png"
            _write_png(tmp / "color" / name, frame.color_bgr)
            _write_png(tmp / "depth" / name, frame.depth_raw)
            truth = frame.truth
            rows.append((f"color/{name}", f"depth/{name}", truth.label, truth.pai, str(truth.subject)))
            per[scenario] = per.get(scenario, 0) + 1
            if on_sample is not None:
                on_sample(i)
        with (tmp / LABELS_FILE).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(rows)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DatasetSummary(out_dir, count, per)


def _write_png(path: Path, image) -> None:
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise DatasetError(f"could not write '{path}'; check free space and permissions")
