"""tools/stream_probe.py: a small CNN per stream finds a cue that only one stream carries."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the probe trains with torch (edgefas[train])")

from dataset_fixture_loader import load_tool  # noqa: E402
from edge.datasets.sampleset import DEPTH_SCALE, SampleSet  # noqa: E402


@pytest.fixture(scope="module")
def tool():
    return load_tool("stream_probe")


def faces(seed: int, n: int = 96, size: int = 32) -> SampleSet:
    """Live faces and 'shell' attacks whose only difference is a raised ring in depth; prints differ in colour."""
    rng = np.random.default_rng(seed)
    pai = np.array([""] * n + ["shell"] * n + ["print"] * 8)
    rgb = rng.integers(0, 256, (len(pai), 3, size, size), dtype=np.uint8)
    rgb[pai == "print"] //= 4
    yy, xx = np.mgrid[:size, :size]
    ring = (np.abs(np.hypot(yy - size / 2, xx - size / 2) - size / 4) < 2).astype(np.float32)
    depth = 0.5 + 0.05 * rng.standard_normal((len(pai), 1, size, size)).astype(np.float32)
    depth[pai == "shell", 0] += 0.3 * ring
    return SampleSet(rgb, np.rint(np.clip(depth, 0, 1) * DEPTH_SCALE).astype(np.uint16), (pai != "").astype(np.int8),
                     pai, np.array(["p"] * len(pai)), np.array([""] * len(pai)))


def test_the_depth_probe_finds_a_depth_only_cue_and_the_colour_probe_does_not(tool):
    import torch

    torch.set_num_threads(1)
    rgb, depth, y = tool.species_arrays(faces(1), "shell")
    assert set(np.unique(y)) == {0.0, 1.0} and len(y) == 192  # live and the one species, no prints
    trgb, tdepth, ty = tool.species_arrays(faces(2), "shell")
    found = {}
    for stream in ("depth", "rgb"):
        net = tool.train_probe(rgb, depth, y, stream, steps=60, seed=0, augment=False, batch=16)
        found[stream] = tool.separation(tool.probe_scores(net, tool.select(trgb, tdepth, stream)), ty, "shell")
    assert found["depth"]["auc"] > 0.95
    assert found["rgb"]["auc"] < 0.75  # colour is noise here: a probe on it cannot separate
    assert tool.select(rgb, depth, "both").shape[1] == 4


def test_a_species_the_set_does_not_have_is_named(tool):
    with pytest.raises(SystemExit, match="no such attack in this set.*print, shell"):
        tool.species_arrays(faces(1), "silicone")


def test_unseen_mode_trains_against_every_other_species_and_leaves_the_named_one_out(tool):
    samples = faces(1)
    rgb, depth, y = tool.species_arrays(samples, "shell", others=True)
    assert len(y) == 96 + 8 and int(y.sum()) == 8  # live faces and the prints; no shell
    expected_rgb, _ = samples.arrays(np.flatnonzero(samples.pai != "shell"))
    np.testing.assert_array_equal(rgb, expected_rgb)
    _, _, named = tool.species_arrays(samples, "print")
    assert int(named.sum()) == 8 and len(named) == 104
    with pytest.raises(SystemExit, match="no such attack"):
        tool.species_arrays(samples, "silicone", others=True)
    only_shells = samples.subset(samples.pai != "print")
    with pytest.raises(SystemExit, match="no other attack species"):
        tool.species_arrays(only_shells, "shell", others=True)


def test_copies_are_checked_and_the_clean_split_comes_first(tool):
    kinds = ("clean", "depth", "combined", "skin-brown", "skin-dark")
    assert tool.parse_copies("skin-dark, depth,clean,depth", kinds) == ("clean", "skin-dark", "depth")
    assert tool.parse_copies("", kinds) == ("clean",)
    with pytest.raises(SystemExit, match="--copies depth,skin-blue: skin-blue is not a copy; use some of clean"):
        tool.parse_copies("depth,skin-blue", kinds)


def test_a_colour_cue_that_is_darkness_refuses_darker_owners_at_the_clean_line(tool):
    """Attacks darker than the owners: a colour probe learns darkness, separates the clean split, and at the
    line drawn on clean owners refuses the same owners darkened, which the copy's own AUC does not show."""
    import torch

    torch.set_num_threads(1)

    def painted(seed: int) -> SampleSet:
        s = faces(seed)
        rgb = s.rgb.copy()
        rgb[s.pai == "shell"] //= 2  # the 'paint' is darker than any owner
        return SampleSet(rgb, s.depth, s.is_attack, s.pai, s.subject, s.gate)

    rgb, depth, y = tool.species_arrays(painted(1), "shell")
    net = tool.train_probe(rgb, depth, y, "rgb", steps=60, seed=0, augment=False, batch=16)
    test = painted(2)
    darker = SampleSet(test.rgb // 2, test.depth, test.is_attack, test.pai, test.subject, test.gate)
    scores, labels = {}, {}
    for name, s in (("clean", test), ("darker", darker)):
        trgb, tdepth, ty = tool.species_arrays(s, "shell")
        scores[name], labels[name] = tool.probe_scores(net, tool.select(trgb, tdepth, "rgb")), ty
    read = tool.read_copies(scores, labels, "shell")
    assert read["clean"]["auc"] > 0.95 and read["clean"]["owners_refused"] <= 0.02
    assert read["darker"]["owners_refused"] > 0.5  # the darkened owners look like the paint
    line = tool.clean_line(scores["clean"], labels["clean"])
    assert read["darker"]["owners_refused"] == pytest.approx(float(np.mean(scores["darker"][labels["darker"] == 0] >= line)))
