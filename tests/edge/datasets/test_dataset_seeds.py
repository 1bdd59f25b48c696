"""Synthetic subjects never cross splits: train, dev and test clips and `edgefas synth` output come from
disjoint world seeds.

A world seed is the subject (the person's head and texture), so two splits that share a seed share a
person, and a model evaluated on them is evaluated on faces it trained on. `synth` writes datasets a
user may train on; it must never render a subject of the built-in splits either.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

import edge.capture.synthetic.dataset as synth_dataset
from edge.capture.synthetic.dataset import SPLIT_SEEDS, check_seed, sample_seed, write_synthetic_dataset
from edge.cli.app import app
from edge.errors import DatasetError
from edge.datasets.synthetic import SyntheticDataset

MAX_CLIPS = 10**6  # a split of 4 million frames; the test covers every count up to this many clips
SPLITS = ("train", "dev", "test")


def split_seeds(split: str) -> range:
    """The world seeds of clips 0 .. MAX_CLIPS-1 of ``split`` (clip seeds are consecutive; checked below)."""
    dataset = SyntheticDataset(1, split)
    first = dataset.clip_seed(0)
    for clip in (1, 2, 999, MAX_CLIPS // 2, MAX_CLIPS - 1):
        assert dataset.clip_seed(clip) == first + clip, f"{split}: clip seeds are not consecutive at clip {clip}"
    return range(first, first + MAX_CLIPS)


def overlaps(a: range, b: range) -> bool:
    return a.start < b.stop and b.start < a.stop


def test_split_seed_ranges_never_overlap():
    ranges = {split: split_seeds(split) for split in SPLITS}
    for a, b in itertools.combinations(SPLITS, 2):
        assert not overlaps(ranges[a], ranges[b]), f"{a} {ranges[a]} and {b} {ranges[b]} share subjects"
    for split, seeds in ranges.items():  # and `synth` guards every one of them
        assert SPLIT_SEEDS.start <= seeds.start and seeds.stop <= SPLIT_SEEDS.stop, f"{split} {seeds} unguarded"


def test_a_split_sample_is_the_subject_of_its_clip_seed():
    """What makes seed ranges the right thing to check: the rendered subject is the clip's seed."""
    for split in SPLITS:
        dataset = SyntheticDataset(1, split)
        (sample,) = list(dataset)
        assert sample.subject == str(dataset.clip_seed(0))


@pytest.mark.parametrize("count", [1, 9, 200, 123_457, MAX_CLIPS])
def test_synth_never_renders_a_subject_of_the_splits(count):
    splits = [split_seeds(split) for split in SPLITS]
    accepted = 0
    for seed in range(0, 120):
        rendered = range(sample_seed(seed, 0), sample_seed(seed, count - 1) + 1)
        try:
            check_seed(seed, count)
        except DatasetError as err:
            assert overlaps(rendered, SPLIT_SEEDS), f"--seed {seed} refused for no reason: {err}"
            continue
        accepted += 1
        assert not any(overlaps(rendered, s) for s in splits), f"--seed {seed} --count {count} renders {rendered}"
    assert accepted >= 80  # seeds 0..8 and 40.. stay usable
    for seed in (0, SPLIT_SEEDS.start - 1, SPLIT_SEEDS.stop):  # one continuous scene is the seed's own world
        check_seed(seed, count, scene="live")
    for split_seed in (s.start for s in splits):
        with pytest.raises(DatasetError):
            check_seed(split_seed, count, scene="live")


def test_writer_renders_exactly_the_seeds_the_check_sees(tmp_path, monkeypatch):
    rendered = []

    class RecordingWorld:
        def __init__(self, scenario, seed):
            rendered.append(seed)
            self.scenario = scenario

        def frame(self, index):
            truth = SimpleNamespace(label="live", pai="", subject=rendered[-1], scenario=self.scenario)
            return SimpleNamespace(color_bgr=np.zeros((4, 4, 3), np.uint8), depth_raw=np.zeros((4, 4), np.uint16),
                                   truth=truth)

    monkeypatch.setattr(synth_dataset, "SyntheticWorld", RecordingWorld)
    write_synthetic_dataset(tmp_path / "a", 12, seed=3)
    assert rendered == [sample_seed(3, i) for i in range(12)]
    rendered.clear()
    write_synthetic_dataset(tmp_path / "b", 4, seed=5, stream="live")
    assert rendered == [5]
    with pytest.raises(DatasetError, match="--seed 10 "):
        write_synthetic_dataset(tmp_path / "c", 12, seed=10)
    assert not (tmp_path / "c").exists() and len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("args", [
    ["--count", "5", "--seed", "10"],  # samples 10_000_030 .. : train subjects
    ["--count", "1000000", "--seed", "9"],  # the tail of 9's samples reaches train
    ["--count", "3", "--seed", "30000000", "--stream", "--scenario", "live"],  # test clip 0 itself
    ["--count", "3", "--seed", "20000005", "--format", "bag", "--scenario", "print"],
])
def test_synth_command_refuses_a_colliding_seed_in_one_line(tmp_path, monkeypatch, args):
    import edge.capture.synthetic

    class Unrenderable:
        def __init__(self, scenario, seed, **kwargs):
            raise AssertionError(f"rendered world seed {seed} instead of refusing it")

    for module in (synth_dataset, edge.capture.synthetic):  # the writer's and the recorder's
        monkeypatch.setattr(module, "SyntheticWorld", Unrenderable)
    out = tmp_path / ("x.db3" if "bag" in args else "x")
    result = CliRunner().invoke(app, ["synth", "--out", str(out), *args])
    assert result.exit_code != 0 and isinstance(result.exception, DatasetError), result.output
    message = str(result.exception)
    assert "\n" not in message and "--seed" in message and "train/dev/test" in message
    assert list(tmp_path.iterdir()) == [], "nothing is written for a refused seed"


def test_mixed_videos_never_draw_a_split_clip_seed():
    from edge.capture.synthetic.world import RESERVED_CLIP_SEEDS, SyntheticWorld, outside_split_seeds
    from edge.datasets.photo import SPLIT_SEED_BASE as PHOTO_BASE
    from edge.datasets.synthetic import SPLIT_SEED_BASE

    for base in list(SPLIT_SEED_BASE.values()) + list(PHOTO_BASE.values()):
        assert base in RESERVED_CLIP_SEEDS and base + 9_999_999 in RESERVED_CLIP_SEEDS
    assert outside_split_seeds(10_000_000) not in RESERVED_CLIP_SEEDS
    assert outside_split_seeds(5) == 5 and outside_split_seeds(2**31 - 2) == 2**31 - 2
    world = SyntheticWorld("mixed", seed=1)
    seeds = {world.clip_plan(k * 45)[2] for k in range(200)}
    assert not any(s in RESERVED_CLIP_SEEDS for s in seeds) and len(seeds) > 150
    for k in (0, 7):  # the plan is the clip that is built
        assert world.clip_for(k * 45).rng_seed == world.clip_plan(k * 45)[2]
