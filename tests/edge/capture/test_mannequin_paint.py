"""tools/mannequin_paint.py: which mannequins a model passes, by paint, paired with the cached faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dataset_fixture_loader import load_tool
from edge.errors import EdgefasError

ROOT = Path(__file__).resolve().parents[3]


def _m(plastic: str, lightness: float, blank: bool = False, subject: str = "A") -> object:
    return load_tool("mannequin_paint").Mannequin(plastic, lightness, blank, subject)


def test_each_mannequin_counts_once_in_each_kind_of_row_and_passes_below_the_threshold():
    tool = load_tool("mannequin_paint")
    ms = [_m("black", 0.1), _m("skin", 0.3, subject="B"), _m("skin", 0.8, blank=True), _m("white", 0.9)]
    table = tool.breakdown(ms, np.array([0.2, 0.9, 0.4, 1.5]), threshold=1.0)
    assert table["all"] == (3, 4) and list(table)[0] == "all"
    assert table["plastic skin"] == (2, 2) and table["plastic white"] == (0, 1)
    assert table["dark paint"] == (2, 2) and table["light paint"] == (1, 2)
    assert table["blank head"] == (1, 1) and table["painted features"] == (2, 3)
    assert table["person A"] == (2, 3) and table["person B"] == (1, 1)
    with pytest.raises(ValueError, match="3 mannequins but 4 scores"):
        tool.breakdown(ms[:3], np.zeros(4), 1.0)


def test_the_owner_matched_threshold_refuses_that_share_of_owners():
    tool = load_tool("mannequin_paint")
    live = np.arange(100, dtype=float)
    scores = np.concatenate([live, [50.0, 99.5]])
    is_attack = np.arange(102) >= 100
    t = tool.owner_threshold(scores, is_attack, np.where(is_attack, "mannequin", ""), 0.02)
    assert (live >= t).mean() == pytest.approx(0.02, abs=0.011)
    with pytest.raises(EdgefasError, match="unknown threshold target"):
        tool.owner_threshold(scores, is_attack, np.where(is_attack, "mannequin", ""), 2.0)


def test_a_render_that_does_not_match_the_cache_is_one_line():
    tool = load_tool("mannequin_paint")
    looks = [_m("skin", 0.5, subject="A"), _m("grey", 0.5, subject="B")]
    assert tool.pair(looks, np.array(["A", "B"]), "photo:32 dev") == looks
    for cached in (np.array(["A"]), np.array(["B", "A"])):
        with pytest.raises(EdgefasError) as err:
            tool.pair(looks, cached, "photo:32 dev")
        assert "\n" not in str(err.value) and "not this world's" in str(err.value)


def test_the_look_is_the_paint_mannequin_paint_lays_down(library):
    """mannequin_look is mannequin_paint's own first draws: the cheek is its base colour, a blank head has
    no painted eye, and a dark look is dark paint."""
    from edge.capture.photo.scene import mannequin_look, mannequin_paint
    from edge.capture.photo.world import cached_card

    card = cached_card(str(library.photos_in("train")[0].path), str(library.root))
    lm = card.texel(card.landmarks_m[:, :2])
    ipd = float(np.linalg.norm(lm[1] - lm[0]))
    cx, cy = (lm[0] + lm[3]) / 2 + np.array([-0.2 * ipd, 0.0])
    plastics, blanks = set(), 0
    for seed in range(30):
        look = mannequin_look(np.random.default_rng(seed))
        paint, _ = mannequin_paint(card, np.random.default_rng(seed))
        assert np.allclose(paint[int(cy), int(cx)], look.base_bgr, atol=1e-6), f"seed {seed}: cheek is not the base"
        eye = paint[int(lm[0, 1]), int(lm[0, 0])]
        assert (np.abs(eye - look.base_bgr).max() < 1e-6) == look.blank, f"seed {seed}: blank and the eye disagree"
        assert (look.lightness < 0.45) == (float(paint[int(cy), int(cx)] @ [0.114, 0.587, 0.299]) < 0.45)
        plastics.add(look.plastic)
        blanks += look.blank
    assert plastics == {"skin", "white", "grey", "black"} and 0 < blanks < 30


def test_the_clip_plan_is_the_order_the_set_renders_in():
    """clips() walks the set without rendering; iterating renders exactly those clips, in that order."""
    from edge.datasets.rendered import RenderedDataset, World

    class Frame:
        def __init__(self, scenario, seed, i):
            from types import SimpleNamespace

            self.color_bgr = np.zeros((2, 2, 3), np.uint8)
            self.depth_raw = np.zeros((2, 2), np.uint16)
            self.truth = SimpleNamespace(label="live" if scenario == "live" else "spoof",
                                         pai="" if scenario == "live" else scenario, subject=seed)

    made = []

    class Clip:
        def __init__(self, scenario, seed, split):
            made.append((scenario, seed))
            self.scenario, self.seed = scenario, seed

        def frame(self, i):
            return Frame(self.scenario, self.seed, i)

    world = World("fake", ("print", "mask"), {"dev": 100}, ("live", "print", "live", "mask"), 3, 10, Clip)
    ds = RenderedDataset(world, 11, "dev")
    plan = list(ds.clips())
    assert plan == [("live", 100, 3), ("print", 101, 3), ("live", 102, 3), ("mask", 103, 2)]
    assert not made, "clips() rendered something"
    raws = list(ds)
    assert len(raws) == 11 and made == [(s, seed) for s, seed, _ in plan]
    assert [r.path for r in raws[-2:]] == ["fake:mask seed=103 frame=0", "fake:mask seed=103 frame=10"]


def test_a_model_is_read_on_the_cached_mannequins_of_a_small_split(library, tmp_path, shared_data, capsys):
    tool = load_tool("mannequin_paint")
    model = ROOT / "engines" / "models" / "edge-synthetic.onnx"
    out = tmp_path / "r.json"
    args = ["--model", str(model), "--split", "dev", "--count", "32", "--bpcer", "0.5", "--cache-dir",
            str(tmp_path / "cache"), "--model-dir", str(shared_data / "models"), "--json", str(out)]
    assert tool.main(args) == 0, capsys.readouterr().err
    reads = json.loads(out.read_text())[str(model)]
    assert len(reads) == 2  # the stored threshold and the owner-matched one
    for table in reads.values():
        shown = table["all"][1]
        assert shown >= 1  # one mannequin clip of two frames in 32 faces; the cache's count (pair checks it)
        assert sum(v[1] for k, v in table.items() if k.startswith("plastic ")) == shown
        assert sum(v[1] for k, v in table.items() if k.startswith("person ")) == shown
    printed = capsys.readouterr().out
    assert "| all |" in printed and "edge-synthetic at stored threshold" in printed
    assert tool.main(["--model", str(tmp_path / "none.onnx")]) == 2
    assert "none.onnx: no such file" in capsys.readouterr().err
    assert tool.main(["--model", str(model), "--bpcer", "5"]) == 2
    assert "--bpcer 5.0" in capsys.readouterr().err
    from mean_score_model import write_mean_score_model

    bare = write_mean_score_model(tmp_path / "bare.onnx")
    assert tool.main(["--model", str(bare), "--count", "32", "--cache-dir", str(tmp_path / "cache")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "no stored threshold" in err[0]
