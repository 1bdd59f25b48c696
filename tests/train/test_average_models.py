"""``edgefas average`` (train/average.py): the weight average of fine-tunes, recalibrated, and what it refuses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")

from edge.cli.app import app  # noqa: E402
from edge.errors import ConfigError, ModelError  # noqa: E402
from train import average as tool  # noqa: E402
from train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from train.model import TrainConfig, get_preset  # noqa: E402
from train.model.network import build_model  # noqa: E402


def saved(path: Path, seed: int, preset: str = "edge") -> Path:
    torch.manual_seed(seed)
    config = get_preset(preset)
    model = build_model(config)
    with torch.no_grad():  # distinct running statistics, so "taken from the first" is checkable
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_()
    return save_checkpoint(path, model, config, TrainConfig(), step=10 * seed)


def test_parameters_are_the_uniform_mean_and_norm_statistics_are_not_averaged(tmp_path):
    paths = [saved(tmp_path / f"{s}.pt", s) for s in (1, 2, 3)]
    states = [load_checkpoint(p)[0].state_dict() for p in paths]
    mean = tool.average_state(states)
    averaged = 0
    for key, value in mean.items():
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(value, states[0][key])
        elif value.is_floating_point():
            expected = (states[0][key] + states[1][key] + states[2][key]) / 3
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
            averaged += int(not torch.allclose(value, states[0][key]))
    assert averaged > 10  # the inputs differed, so the average moved most tensors away from the first


def test_weights_give_each_model_its_share_and_bad_weights_are_refused(tmp_path):
    paths = [saved(tmp_path / f"{s}.pt", s) for s in (1, 2)]
    states = [load_checkpoint(p)[0].state_dict() for p in paths]
    mean = tool.average_state(states, [0.75, 0.25])
    key = next(k for k, v in mean.items() if k.endswith(".weight") and v.dim() == 4)
    torch.testing.assert_close(mean[key], 0.75 * states[0][key] + 0.25 * states[1][key], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(mean[key], tool.average_state(states)[key])  # not the uniform mean
    assert tool.normalised([2, 1, 1], 3) == pytest.approx([0.5, 0.25, 0.25])
    assert tool.normalised(None, 4) == pytest.approx([0.25] * 4)
    with pytest.raises(ConfigError, match="given 1 times for 2 models"):
        tool.normalised([1.0], 2)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ConfigError, match="--weight"):
            tool.normalised([1.0, bad], 2)


def test_no_model_or_mixed_presets_are_refused_and_one_model_is_taken(tmp_path):
    edge = saved(tmp_path / "edge.pt", 1)
    wide = saved(tmp_path / "wide.pt", 2, preset="edge-wide")
    with pytest.raises(ModelError, match="at least one"):
        tool.load_all([])
    assert len(tool.load_all([edge])) == 1  # one model: its own weights, calibrated again
    with pytest.raises(ModelError, match="one preset") as err:
        tool.load_all([edge, wide])
    assert "wide.pt" in str(err.value) and "edge.pt" in str(err.value)


def test_a_missing_file_writing_over_an_input_or_a_bad_target_is_refused_before_any_work(tmp_path, monkeypatch):
    edge = saved(tmp_path / "edge.pt", 1)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    args = ["--dataset", "synthetic:16", "--dev-dataset", "synthetic:16", "--cache-dir", str(tmp_path / "cache")]
    runner = CliRunner(env={"COLUMNS": "400"})  # wide enough that the usage box does not cut the path short
    missing = runner.invoke(app, ["average", str(edge), str(tmp_path / "nope.pt"), *args, "--out", "o.pt"])
    assert missing.exit_code == 2 and "nope.pt" in missing.output  # typer's usage error, naming the file
    over = runner.invoke(app, ["average", str(edge), str(tmp_path / "edge.pt"), *args, "--out", str(edge)])
    assert isinstance(over.exception, ModelError) and "one of the inputs" in str(over.exception)
    bogus = runner.invoke(app, ["average", str(edge), str(edge), *args, "--threshold-target", "bogus", "--out", "o.pt"])
    assert isinstance(bogus.exception, ConfigError) and "bogus" in str(bogus.exception)
    miscount = runner.invoke(app, ["average", str(edge), str(edge), *args, "--weight", "1", "--out", "o.pt"])
    assert isinstance(miscount.exception, ConfigError) and "--weight is given 1 times" in str(miscount.exception)
    assert "\n" not in str(over.exception) + str(bogus.exception) + str(miscount.exception)
    assert list(work.iterdir()) == [] and not (tmp_path / "cache").exists()  # nothing read, nothing written


def test_the_average_ships_calibrated_with_its_own_norm_statistics(tmp_path, shared_data):
    paths = [saved(tmp_path / f"{s}.pt", s) for s in (1, 2)]
    out = tmp_path / "soup" / "model.pt"
    out.parent.mkdir()
    result = CliRunner().invoke(app, ["average", *map(str, paths), "--weight", "3", "--weight", "1", "--dataset",
                                      "synthetic:16", "--dev-dataset", "synthetic:16", "--out", str(out),
                                      "--cache-dir", str(tmp_path / "cache"),
                                      "--model-dir", str(shared_data / "models"), "--detector", "yunet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.with_name("model.average.json").read_text())
    model, info = load_checkpoint(out)
    first = load_checkpoint(paths[0])[0].state_dict()
    second = load_checkpoint(paths[1])[0].state_dict()
    state = model.state_dict()
    key = next(k for k, v in state.items() if k.endswith(".weight") and v.dim() == 4)
    torch.testing.assert_close(state[key], 0.75 * first[key] + 0.25 * second[key], rtol=1e-5, atol=1e-6)
    stats = [k for k in state if k.endswith("running_mean")]
    assert any(not torch.allclose(state[k], first[k]) for k in stats)  # recomputed on training faces
    assert math.isfinite(info.threshold) and info.threshold == pytest.approx(summary["threshold"])
    assert info.alpha == pytest.approx(summary["alpha"]) and info.step == 20
    rule = summary["alpha_rule"]  # why that alpha: every alpha's dev, flat-lit and perturbed readings
    assert set(rule) == {"dev_eer", "flat_dev_worst_apcer", "dev_share_near_threshold", "perturbed_dev"} and str(summary["alpha"]) in rule["dev_eer"]
    assert summary["sources"] == [str(p) for p in paths] and summary["dataset"] == "synthetic:16"
    assert summary["shares"] == pytest.approx([0.75, 0.25])
    assert f"{summary['threshold']:.4f}" in result.output and "average of 2 models (shares 0.75, 0.25)" in result.output
