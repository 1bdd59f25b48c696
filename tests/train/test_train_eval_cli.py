"""`edgefas train`, `eval` and `explain` end to end on a few synthetic frames."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edge.cli.app import app
from edge.errors import EdgefasError

pytest.importorskip("torch", reason="training needs torch (edgefas[train])")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("run")
    cache = tmp_path_factory.mktemp("cache")
    args = ["train", "--dataset", "synthetic:16", "--out", str(out / "r"), "--steps", "2", "--batch", "4",
            "--threads", "1", "--cache-dir", str(cache), "--detector", "yunet",
            "--model-dir", str(shared_data / "models")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out / "r", cache


def test_train_writes_a_calibrated_checkpoint_and_logs(run_dir):
    folder, _ = run_dir
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["steps"] == 2 and np.isfinite(summary["threshold"])
    assert summary["alpha"] >= 0 and summary["peak_rss_mib"] > 0
    rows = (folder / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 3
    assert any((folder / "tensorboard").iterdir())


def test_resume_continues_from_the_last_step(run_dir, shared_data):
    folder, cache = run_dir
    args = ["train", "--dataset", "synthetic:16", "--out", str(folder), "--steps", "3", "--batch", "4", "--resume",
            "--threads", "1", "--cache-dir", str(cache), "--detector", "yunet",
            "--model-dir", str(shared_data / "models")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "summary.json").read_text())["steps"] == 3
    assert len((folder / "metrics.csv").read_text().splitlines()) == 4


def test_export_eval_and_explain(run_dir, tmp_path, shared_data):
    folder, cache = run_dir
    runner = CliRunner()
    onnx = tmp_path / "m.onnx"
    full = tmp_path / "full.onnx"
    assert runner.invoke(app, ["export", "--model", str(folder / "model.pt"), "--out", str(onnx)]).exit_code == 0
    assert runner.invoke(app, ["export", "--model", str(folder / "model.pt"), "--out", str(full),
                               "--variant", "full"]).exit_code == 0
    report = tmp_path / "eval.json"
    plot = tmp_path / "det.png"
    result = runner.invoke(app, ["eval", "--model", str(onnx), "--dataset", "synthetic:16", "--split", "dev",
                                 "--json", str(report), "--plot", str(plot), "--cache-dir", str(cache),
                                 "--detector", "yunet", "--model-dir", str(shared_data / "models")])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    for key in ("apcer", "apcer_max", "apcer_pooled", "bpcer", "acer", "eer", "auc", "threshold", "n_live",
                "n_spoof"):
        assert key in data
    assert data["n_live"] + data["n_spoof"] >= 12 and plot.stat().st_size > 1000
    pics = tmp_path / "pics"
    result = runner.invoke(app, ["explain", "--model", str(full), "--input", "synthetic:print", "--frames", "2",
                                 "--out", str(pics), "--detector", "yunet", "--model-dir", str(shared_data / "models")])
    assert result.exit_code == 0, result.output
    assert sorted(p.suffix for p in pics.iterdir()) == [".png", ".png"]


def test_eval_json_dash_prints_the_report_on_stdout_and_writes_no_file(run_dir, tmp_path, shared_data, monkeypatch):
    """`--json -` is standard output (as on `bench`); before, eval wrote a file named '-'."""
    folder, cache = run_dir
    onnx = tmp_path / "m.onnx"
    assert CliRunner().invoke(app, ["export", "--model", str(folder / "model.pt"), "--out", str(onnx)]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["eval", "--model", str(onnx), "--dataset", "synthetic:16", "--split", "dev",
                                      "--json", "-", "--cache-dir", str(cache), "--detector", "yunet",
                                      "--model-dir", str(shared_data / "models")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout holds the JSON alone: the table went to stderr
    assert data["n_live"] + data["n_spoof"] >= 12 and "ACER" in result.stderr
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("args", [["eval", "--plot", "-"], ["calibrate", "threshold", "--out", "-"],
                                  ["average", "a.pt", "b.pt", "--out", "-"]])
def test_a_file_option_refuses_dash_before_any_work(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 2 and "standard output" in result.output, result.output
    assert not (tmp_path / "-").exists()


def test_explain_refuses_a_score_only_model(run_dir, tmp_path, shared_data):
    folder, _ = run_dir
    onnx = tmp_path / "m.onnx"
    CliRunner().invoke(app, ["export", "--model", str(folder / "model.pt"), "--out", str(onnx)])
    result = CliRunner().invoke(app, ["explain", "--model", str(onnx), "--input", "synthetic:live", "--frames", "1",
                                      "--out", str(tmp_path / "p"), "--detector", "yunet",
                                      "--model-dir", str(shared_data / "models")])
    assert result.exit_code != 0 and "--variant full" in str(result.exception)


def test_wrong_dataset_layout_names_the_expected_file(run_dir, tmp_path):
    from edge.errors import DatasetError

    folder, _ = run_dir
    onnx = tmp_path / "m.onnx"
    CliRunner().invoke(app, ["export", "--model", str(folder / "model.pt"), "--out", str(onnx)])
    empty = tmp_path / "not-a-dataset"
    empty.mkdir()
    result = CliRunner().invoke(app, ["eval", "--model", str(onnx), "--dataset", f"folder:{empty}",
                                      "--cache-dir", str(tmp_path / "c")])
    assert isinstance(result.exception, DatasetError) and "labels.csv" in str(result.exception)


def test_init_starts_a_new_run_from_a_checkpoint_and_refuses_what_does_not_fit(run_dir, tmp_path, shared_data):
    """Fine-tuning (`--init`): the run starts from the checkpoint's weights at step 0, with its own run folder."""
    import torch

    from train.checkpoint import load_checkpoint
    from train.model.presets import get_preset
    from train.run import TrainJob, initial_model

    folder, cache = run_dir
    source, _ = load_checkpoint(folder / "model.pt")
    started = initial_model(get_preset("edge"), TrainJob(init=folder / "model.pt"))
    assert started.training
    for (name, want), have in zip(source.state_dict().items(), started.state_dict().values()):
        assert torch.equal(want, have), name
    fresh = initial_model(get_preset("edge"), TrainJob())
    assert not all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), fresh.state_dict().values()))

    base = ["train", "--dataset", "synthetic:16", "--steps", "1", "--batch", "4", "--threads", "1", "--cache-dir",
            str(cache), "--detector", "yunet", "--model-dir", str(shared_data / "models"), "--init", str(folder / "model.pt")]
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "tuned")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "tuned" / "summary.json").read_text())["steps"] == 1  # a new run: step 0 + 1
    for extra, says in ((["--preset", "edge-wide"], "holds a 'edge' model"), (["--rgb-only"], "trained on rgb+depth"),
                        (["--resume"], "not both")):
        result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "x"), *extra])
        assert result.exit_code != 0 and isinstance(result.exception, EdgefasError), result.output
        assert says in str(result.exception) and "\n" not in str(result.exception)


def test_resume_keeps_the_runs_own_settings_and_refuses_a_different_one(run_dir, tmp_path, shared_data):
    """--resume continues with the run's own preset, batch, seed, learning rate, weight average, streams,
    camera realism, species mix, colour-blind weight, partial share and QAT; each of those options given with a different value is refused in one
    line naming both values, before any data is read (before, all but the last two were silently the
    checkpoint's, and a resumed wide run silently trained on standard batches). A hard species mix
    measures the species' difficulty before its first batch."""
    from train.checkpoint import load_checkpoint

    folder, cache = tmp_path / "wide", run_dir[1]  # the module's preprocessed faces (both presets are 128 px)
    base = ["train", "--dataset", "synthetic:16", "--out", str(folder), "--threads", "1",
            "--cache-dir", str(cache), "--detector", "yunet", "--model-dir", str(shared_data / "models")]
    result = CliRunner().invoke(app, [*base, "--steps", "1", "--batch", "4", "--seed", "3",
                                      "--lr", "0.0001", "--ema", "0.9", "--augment", "wide", "--species-mix", "hard",
                                      "--colour-blind", "0.5", "--partial", "0.25", "--qat", "cpu"])
    assert result.exit_code == 0, result.output
    config = load_checkpoint(folder / "last.pt")[1].train_config
    assert config.augment == "wide" and config.species_mix == "hard" and config.colour_blind_weight == 0.5
    assert config.qat == "cpu" and config.partial_fraction == 0.25
    assert "species mix at step 0: {'print':" in result.output
    for extra, asked, kept in ((["--preset", "edge-wide"], "--preset edge-wide", "--preset edge"),
                               (["--batch", "6"], "--batch 6", "--batch 4"), (["--seed", "0"], "--seed 0", "--seed 3"),
                               (["--lr", "0.001"], "--lr 0.001", "--lr 0.0001"), (["--ema", "0"], "--ema 0.0", "--ema 0.9"),
                               (["--rgb-only"], "rgb streams asked", "rgb+depth"),
                               (["--species-mix", "even"], "--species-mix even", "--species-mix hard"),
                               (["--augment", "standard"], "--augment standard", "--augment wide"),
                               (["--colour-blind", "1"], "--colour-blind 1.0", "--colour-blind 0.5"),
                               (["--partial", "0"], "--partial 0.0", "--partial 0.25"),
                               (["--qat", "off"], "--qat off", "--qat cpu")):
        result = CliRunner().invoke(app, [*base, "--steps", "2", "--resume", *extra])
        assert result.exit_code != 0 and isinstance(result.exception, EdgefasError), (extra, result.output)
        message = str(result.exception)
        assert asked in message and kept in message and "\n" not in message, message
    assert load_checkpoint(folder / "last.pt")[1].step == 1  # the refusals trained nothing
    result = CliRunner().invoke(app, [*base, "--steps", "2", "--resume", "--batch", "4"])  # the run's own value is fine
    assert result.exit_code == 0, result.output
    _, info = load_checkpoint(folder / "model.pt")
    assert info.step == 2 and info.preset == "edge"
    config = info.train_config
    assert (config.batch_size, config.seed, config.learning_rate, config.ema_decay) == (4, 3, 0.0001, 0.9)
    assert config.augment == "wide" and config.species_mix == "hard" and config.colour_blind_weight == 0.5
    assert config.qat == "cpu" and config.partial_fraction == 0.25


def test_a_resumed_run_keeps_its_preset_when_preset_is_left_out(tmp_path):
    """Resuming an edge-wide run without --preset continues (and later saves) an edge-wide model: before,
    the job's default preset, edge, labelled the resumed run's model.pt."""
    from train.checkpoint import save_checkpoint
    from train.model.network import build_model
    from train.model.objective import TrainConfig
    from train.model.presets import get_preset
    from train.run import TrainJob, resumed_job

    wide = get_preset("edge-wide")
    last = tmp_path / "last.pt"
    save_checkpoint(last, build_model(wide), wide, TrainConfig(batch_size=6, seed=4), step=5)
    job, model_config = resumed_job(TrainJob(out_dir=tmp_path, resume=True), last)
    assert model_config.name == "edge-wide" and job.preset == "edge-wide"
    assert (job.batch_size, job.seed, job.modalities) == (6, 4, ("rgb", "depth"))
    with pytest.raises(EdgefasError, match="--preset edge: .* trains with --preset edge-wide"):
        resumed_job(TrainJob(out_dir=tmp_path, resume=True, preset="edge"), last)


def test_a_resumed_cosine_run_finishes_its_own_steps_and_refuses_a_time_limit(tmp_path):
    """A cosine schedule is drawn over the run's --steps: a resume keeps it, may ship at the step reached,
    and refuses to go past or stop short of those steps, or to change the schedule; --time-limit (a step
    unknown in advance) is refused with it in one line before any data is read."""
    from edge.errors import ConfigError
    from train.checkpoint import save_checkpoint
    from train.model.network import build_model
    from train.model.objective import TrainConfig
    from train.model.presets import get_preset
    from train.run import TrainJob, resumed_job, run_training

    edge = get_preset("edge")
    last = tmp_path / "last.pt"
    save_checkpoint(last, build_model(edge), edge, TrainConfig(batch_size=4, steps=6, lr_schedule="cosine"), step=3)
    for steps in (6, 3, 2):  # the run's own end, or shipping at (or before) the step reached
        job, _ = resumed_job(TrainJob(out_dir=tmp_path, resume=True, steps=steps), last)
        assert job.lr_schedule == "cosine"
    for steps in (4, 10):
        with pytest.raises(ConfigError, match="--steps .*over 6 steps .*resume with --steps 6"):
            resumed_job(TrainJob(out_dir=tmp_path, resume=True, steps=steps), last)
    with pytest.raises(ConfigError, match="--lr-schedule constant: .* trains with --lr-schedule cosine"):
        resumed_job(TrainJob(out_dir=tmp_path, resume=True, steps=6, lr_schedule="constant"), last)
    save_checkpoint(last, build_model(edge), edge, TrainConfig(batch_size=4, steps=6), step=3)
    assert resumed_job(TrainJob(out_dir=tmp_path, resume=True, steps=10), last)[0].lr_schedule == "constant"

    cache = tmp_path / "cache"
    save_checkpoint(last, build_model(edge), edge, TrainConfig(batch_size=4, steps=6, lr_schedule="cosine"), step=3)
    for job in (TrainJob(dataset="synthetic:16", out_dir=tmp_path / "new", steps=5, lr_schedule="cosine",
                         time_limit_s=60.0, cache_dir=cache, detector="haar"),
                TrainJob(dataset="synthetic:16", out_dir=tmp_path, steps=6, resume=True, time_limit_s=60.0,
                         cache_dir=cache, detector="haar")):  # the resumed run's own schedule, not asked
        with pytest.raises(ConfigError, match="--time-limit .*--lr-schedule cosine") as refused:
            run_training(job)
        assert "\n" not in str(refused.value)
    assert not cache.exists() and not (tmp_path / "new").exists()  # a bad value: tests/edge/test_cli_choices.py


def test_colour_blind_with_rgb_only_is_refused_before_any_data_is_read(tmp_path):
    """The colour-blind step trains the depth stream; with --rgb-only the CLI says so in one line at once,
    before any frame is rendered or cached (TrainConfig refuses the pair as well, after the data)."""
    cache = tmp_path / "cache"
    result = CliRunner().invoke(app, ["train", "--dataset", "synthetic:16", "--steps", "1", "--batch", "4",
                                      "--rgb-only", "--colour-blind", "1", "--out", str(tmp_path / "run"),
                                      "--cache-dir", str(cache), "--detector", "haar"])
    assert result.exit_code != 0 and isinstance(result.exception, EdgefasError), result.output
    message = str(result.exception)
    assert "--colour-blind" in message and "--rgb-only" in message and "\n" not in message
    assert not cache.exists() and not (tmp_path / "run").exists()


def test_depth_guard_run_warms_the_guard_up_with_the_runs_eyeglasses_and_places_it(run_dir, tmp_path, shared_data,
                                                                                    monkeypatch):
    """`train --depth-guard --augment glasses-sensor`: the guard's warm-up batches carry the run's share of
    real eyeglasses (without them a guard refuses owners who wear them) and of another sensor's depth, as
    the run's batches do, on a seed of their own; the checkpoint
    has the guard, and the dev report its line. With --rgb-only it is refused."""
    import train.guard_warmup as guard_warmup
    import train.run as run
    from train.checkpoint import load_checkpoint

    monkeypatch.setattr(guard_warmup, "WARMUP_STEPS", 3)
    monkeypatch.setattr(guard_warmup, "WARMUP_BATCH", 4)
    calls = []
    real = run.balanced_batches

    def spy(samples, batch_size, seed, **kwargs):
        calls.append((batch_size, seed, (kwargs.get("eyeglasses_fraction", 0.0), kwargs.get("sensor_fraction", 0.0))))
        return real(samples, batch_size, seed, **kwargs)

    monkeypatch.setattr(run, "balanced_batches", spy)
    folder, cache = tmp_path / "guarded", run_dir[1]
    base = ["train", "--dataset", "synthetic:16", "--out", str(folder), "--threads", "1", "--batch", "4",
            "--cache-dir", str(cache), "--detector", "yunet", "--model-dir", str(shared_data / "models")]
    result = CliRunner().invoke(app, [*base, "--steps", "1", "--depth-guard", "--augment", "glasses-sensor"])
    assert result.exit_code == 0, result.output
    assert [(b, e) for b, _, e in calls[:2]] == [(4, (0.25, 0.4)), (4, (0.25, 0.4))], calls  # warm-up's, then the run's
    assert calls[0][1] != calls[1][1], calls  # the warm-up's on a seed of its own
    model, info = load_checkpoint(folder / "model.pt")
    assert info.model_config.depth_guard and model.guard is not None
    guard = json.loads((folder / "summary.json").read_text())["dev_report"]["depth_guard"]
    assert guard["live_share"] == 0.005 and float(model.guard_offset) == pytest.approx(guard["offset"])
    result = CliRunner().invoke(app, [*base, "--steps", "1", "--rgb-only", "--depth-guard",
                                      "--out", str(tmp_path / "rgb")])
    assert result.exit_code != 0 and isinstance(result.exception, EdgefasError), result.output
    assert "--depth-guard" in str(result.exception) and not (tmp_path / "rgb").exists()


def test_steps_0_ships_the_init_network_as_it_is_with_its_warmed_up_guard(run_dir, tmp_path, shared_data,
                                                                        monkeypatch):
    """`train --init M --depth-guard --steps 0`: no joint step; the checkpoint holds M's weights and the guard
    as its warm-up left it (a weight average made before the warm-up holds the guard untrained), placed on
    dev, and no species mix is probed for. Without --init, --steps 0 is a one-line error before any data
    is read."""
    import torch

    import train.guard_warmup as guard_warmup
    import train.species_mix as species_mix
    from train.checkpoint import load_checkpoint
    from train.model.guard import GUARD_OFFSET_OFF

    monkeypatch.setattr(guard_warmup, "WARMUP_STEPS", 3)
    monkeypatch.setattr(guard_warmup, "WARMUP_BATCH", 4)
    warmed = {}
    real = guard_warmup.warm_up_guard

    def spy(model, *args, **kwargs):
        out = real(model, *args, **kwargs)
        warmed.update({k: v.clone() for k, v in model.guard.state_dict().items()})
        return out

    monkeypatch.setattr(guard_warmup, "warm_up_guard", spy)

    def no_probe(*args, **kwargs):
        raise AssertionError("the hard species mix probed the network for a run of no steps")

    monkeypatch.setattr(species_mix, "DifficultyProbe", no_probe)
    folder, cache = run_dir
    init, _ = load_checkpoint(folder / "model.pt")
    base = ["train", "--dataset", "synthetic:16", "--threads", "1", "--batch", "4", "--steps", "0", "--ema", "0.99",
            "--species-mix", "hard",
            "--cache-dir", str(cache), "--detector", "yunet", "--model-dir", str(shared_data / "models")]
    result = CliRunner().invoke(app, [*base, "--init", str(folder / "model.pt"), "--depth-guard",
                                      "--out", str(tmp_path / "g0")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "g0" / "summary.json").read_text())["steps"] == 0
    model, info = load_checkpoint(tmp_path / "g0" / "model.pt")
    assert info.model_config.depth_guard and warmed
    kept = dict(init.named_parameters())
    for name, value in model.named_parameters():
        if not name.startswith("guard."):
            assert torch.equal(value, kept[name]), name
    for name, value in model.guard.state_dict().items():
        if value.is_floating_point() and "running_" not in name:  # batch-norm statistics are recomputed
            assert torch.equal(value, warmed[name]), name
    assert float(model.guard_offset) != GUARD_OFFSET_OFF  # placed on dev
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "none")])
    assert result.exit_code != 0 and isinstance(result.exception, EdgefasError), result.output
    assert "--init" in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "none").exists()


def test_until_deadline_gives_batches_until_the_clock_passes_the_limit():
    from train.run import until_deadline

    ticks = iter(range(100))  # each call of the clock is one second later
    given = list(until_deadline(iter(range(10)), 3.5, lambda: next(ticks)))
    assert given == [0, 1, 2]  # limit set at t=0; batches checked at t=1, 2, 3 pass, the one at t=4 is not given
    assert list(until_deadline(iter(range(3)), 1e9, lambda: 0.0)) == [0, 1, 2]  # a far limit: every batch


def test_time_limit_stops_a_run_and_checkpoint_only_leaves_it_for_resume_to_ship(run_dir, tmp_path, shared_data):
    """A run stopped by --time-limit is the run planned for the step it reached; with --checkpoint-only it
    writes last.pt and no model.pt, and `--resume --steps <that step>` ships it without training more."""
    from train.checkpoint import load_checkpoint
    from train.run import TrainJob, run_training

    _, cache = run_dir
    out = tmp_path / "limited"
    ticks = iter(range(1000))
    job = TrainJob(dataset="synthetic:16", out_dir=out, steps=50, batch_size=4, threads=1, cache_dir=cache,
                   detector="yunet", model_dir=shared_data / "models", time_limit_s=2.5, ship=False)
    summary = run_training(job, clock=lambda: next(ticks))
    assert summary.steps == 2 and summary.checkpoint == out / "last.pt"
    assert not (out / "model.pt").exists() and not (out / "summary.json").exists()
    assert load_checkpoint(out / "last.pt")[1].step == 2
    assert len((out / "metrics.csv").read_text().splitlines()) == 3

    args = ["train", "--dataset", "synthetic:16", "--out", str(out), "--steps", "2", "--resume", "--threads", "1",
            "--cache-dir", str(cache), "--detector", "yunet", "--model-dir", str(shared_data / "models")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    shipped = json.loads((out / "summary.json").read_text())
    assert shipped["steps"] == 2 and np.isfinite(shipped["threshold"])
    assert len((out / "metrics.csv").read_text().splitlines()) == 3  # shipping trained no step


def test_checkpoint_only_with_no_steps_and_a_time_limit_under_torchrun_are_refused(run_dir, tmp_path, shared_data,
                                                                                   monkeypatch):
    folder, cache = run_dir
    base = ["train", "--dataset", "synthetic:16", "--out", str(tmp_path / "x"), "--batch", "4", "--threads", "1",
            "--cache-dir", str(cache), "--detector", "yunet", "--model-dir", str(shared_data / "models")]
    result = CliRunner().invoke(app, [*base, "--steps", "0", "--init", str(folder / "model.pt"), "--checkpoint-only"])
    assert result.exit_code != 0 and isinstance(result.exception, EdgefasError), result.output
    assert "writes no last.pt" in str(result.exception) and "\n" not in str(result.exception)
    for key, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", "29511")):
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, [*base, "--steps", "3", "--time-limit", "1"])
    assert result.exit_code != 0 and isinstance(result.exception, EdgefasError), result.output
    assert "--time-limit" in str(result.exception) and "hang" in str(result.exception)
    assert not (tmp_path / "x").exists()


def test_checkpoint_every_bounds_what_a_stopped_run_loses_and_a_resume_may_change_it(run_dir, tmp_path, shared_data):
    """A run stopped between checkpoints keeps last.pt of the last multiple of --checkpoint-every (at 500,
    a session's end lost runs of 250 and 450 steps); resuming with another cadence is not a different run."""
    from train.checkpoint import load_checkpoint
    from train.run import TrainJob, run_training

    _, cache = run_dir
    out = tmp_path / "cut"
    job = TrainJob(dataset="synthetic:16", out_dir=out, steps=6, batch_size=4, threads=1, cache_dir=cache,
                   detector="yunet", model_dir=shared_data / "models", checkpoint_every=2)

    class Stopped(Exception):
        pass

    def stop_at_5(step: int, total: int, losses: dict) -> None:
        if step == 5:
            raise Stopped

    with pytest.raises(Stopped):
        run_training(job, on_step=stop_at_5)
    _, info = load_checkpoint(out / "last.pt")
    assert info.step == 4 and info.train_config.checkpoint_every == 2

    seen = []
    resumed = dataclasses.replace(job, resume=True, batch_size=None, checkpoint_every=3)
    summary = run_training(resumed, on_step=lambda step, total, losses: seen.append(step))
    assert seen == [5, 6] and summary.steps == 6
    assert load_checkpoint(out / "last.pt")[1].train_config.checkpoint_every == 3


def test_exposure_level_reaches_the_checkpoint_from_the_command_line_and_follows_init(run_dir, tmp_path, shared_data):
    """`train --exposure-mean 0.45 --exposure-contrast 0.24` levels the run's network (the checkpoint keeps
    both); a run `--init` from it without the options keeps them, and `--exposure-mean 0` takes both off."""
    from train.checkpoint import load_checkpoint

    folder, cache = run_dir
    base = ["train", "--dataset", "synthetic:16", "--steps", "1", "--batch", "4", "--threads", "1",
            "--cache-dir", str(cache), "--detector", "yunet", "--model-dir", str(shared_data / "models")]
    levelled, kept, off = tmp_path / "levelled", tmp_path / "kept", tmp_path / "off"
    for out, init, extra in ((levelled, folder, ["--exposure-mean", "0.45", "--exposure-contrast", "0.24"]),
                             (kept, levelled, []),
                             (off, kept, ["--exposure-mean", "0"])):
        result = CliRunner().invoke(app, [*base, "--init", str(init / "model.pt"), "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
    assert load_checkpoint(folder / "model.pt")[1].model_config.exposure_mean == 0.0
    model, info = load_checkpoint(levelled / "model.pt")
    assert (info.model_config.exposure_mean, model.exposure.mean, model.exposure.contrast) == (0.45, 0.45, 0.24)
    kept_config = load_checkpoint(kept / "model.pt")[1].model_config
    assert (kept_config.exposure_mean, kept_config.exposure_contrast) == (0.45, 0.24)
    off_config = load_checkpoint(off / "model.pt")[1].model_config
    assert (off_config.exposure_mean, off_config.exposure_contrast) == (0.0, 0.0)
