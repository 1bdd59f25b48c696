"""The depth guard (``ModelConfig.depth_guard``, ``edgefas train --depth-guard``): a depth-only network
whose attack call the colour stream cannot overrule, OR-ed into the score at a line drawn on dev live faces."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (edgefas[train])")

from test_trainer_loop import SIZE, saved_model as _saved, small_config, toy_batch  # noqa: E402
from edge.datasets.sampleset import DEPTH_SCALE, SampleSet  # noqa: E402
from edge.errors import ModelError  # noqa: E402
from train.model import TrainConfig  # noqa: E402
from train.model.guard import (GUARD_LIVE_SHARE, GUARD_OFFSET_OFF, GUARD_TOP_LOCATIONS,  # noqa: E402
                               DepthGuard, guard_loss)
from train.model.network import build_model  # noqa: E402
from train.trainer import Trainer, seed_everything  # noqa: E402


def guarded_config():
    return dataclasses.replace(small_config(), depth_guard=True)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def inputs(n: int = 4, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=gen), torch.rand(n, 1, SIZE, SIZE, generator=gen)


def test_the_presets_have_no_guard_and_their_score_is_the_fused_maps_mean():
    model = build_model(small_config()).eval()
    assert model.guard is None and not any(k.startswith("guard") for k in model.state_dict())
    rgb, depth = inputs()
    with torch.no_grad():
        out = model.forward_fused(rgb, depth)
    torch.testing.assert_close(out.score, out.spoof_map.mean(dim=(1, 2, 3)))


def test_the_config_names_the_guard_only_when_there_is_one():
    from train.model.presets import ModelConfig

    assert "depth_guard" not in small_config().to_dict()  # older edgefas still read a model without one
    assert guarded_config().to_dict()["depth_guard"] is True
    assert ModelConfig.from_dict(guarded_config().to_dict()) == guarded_config()
    assert ModelConfig.from_dict(small_config().to_dict()) == small_config()


def test_a_guard_raises_no_score_until_calibration_places_it():
    model = build_model(guarded_config()).eval()
    assert float(model.guard_offset) == GUARD_OFFSET_OFF
    rgb, depth = inputs()
    with torch.no_grad():
        out = model.forward_fused(rgb, depth)
        assert bool((model.guard_scores(depth) > 0).all())  # the guard does have something to say
    torch.testing.assert_close(out.score, out.spoof_map.mean(dim=(1, 2, 3)))


@pytest.mark.parametrize("offset", [-0.3, 0.0, 0.6])
def test_the_score_is_the_larger_of_the_network_and_the_placed_guard(offset):
    model = build_model(guarded_config()).eval()
    model.set_guard_offset(offset)
    rgb, depth = inputs()
    with torch.no_grad():
        fused = model.forward_fused(rgb, depth)
        full = model(rgb, depth)
        train = model.forward_train(rgb, depth)
        expected = torch.maximum(fused.spoof_map.mean(dim=(1, 2, 3)), model.guard_scores(depth) + offset)
    torch.testing.assert_close(fused.score, expected)
    torch.testing.assert_close(full.score, expected)  # alpha 0: the traces add nothing
    torch.testing.assert_close(train.score, expected)
    if offset == 0.6:  # the guard's probabilities are about 0.5: it decides every one of these
        assert bool((fused.score > fused.spoof_map.mean(dim=(1, 2, 3)) + 0.5).all())


def test_a_local_cue_on_the_guards_map_sets_its_score_as_a_whole_map_would():
    """Paper glasses cover a few locations of the 8 x 8 map: the score reads the highest locations, so a
    cue there counts as much as one spread over the face, where the map's mean would dilute it 16-fold."""
    quiet = torch.full((2, 1, 8, 8), -4.0)
    local = quiet.clone()
    local[0, 0, 3:5, 2:4] = 4.0  # four locations in front of the eyes
    local[1, 0, 3, 2:6] = 4.0  # the same cue laid along a row
    spread = torch.full((1, 1, 8, 8), 4.0)
    assert GUARD_TOP_LOCATIONS == 4
    score_local, score_spread, score_quiet = (DepthGuard.score(m) for m in (local, spread, quiet))
    torch.testing.assert_close(score_local, torch.sigmoid(torch.tensor([4.0, 4.0])))
    torch.testing.assert_close(score_local, score_spread.expand(2))
    assert float(score_quiet.max()) < 0.02
    tiny = torch.tensor([[[[4.0, -4.0]]]])  # a map with fewer locations than the reading reads
    torch.testing.assert_close(DepthGuard.score(tiny), torch.sigmoid(torch.tensor([4.0, -4.0])).mean().reshape(1))


def test_the_guard_learns_from_its_own_loss_alone_and_colour_reaches_none_of_it():
    model = build_model(guarded_config()).train()
    rgb, depth = inputs()
    out = model.forward_train(rgb, depth)
    guard_loss(out.guard, torch.tensor([0.0, 1.0, 0.0, 1.0])).backward()
    guard = {id(p) for p in model.guard.parameters()}
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.guard.parameters())
    assert all(p.grad is None for p in model.parameters() if id(p) not in guard)
    model.zero_grad(set_to_none=True)
    out = model.forward_train(rgb.requires_grad_(True), depth)
    out.guard.sum().backward()
    assert rgb.grad is None  # no path from colour into the guard


def test_the_joint_steps_leave_the_guard_as_its_warm_up_made_it():
    """The guard trains in its warm-up only: in the joint steps (whose batches may put real eyeglasses on
    live faces) it takes no gradient and is not in the optimiser, and its weights do not move, while the
    rest of the network learns; its loss is still reported."""
    from test_trainer_loop import flat_weights

    config = guarded_config()
    train_config = TrainConfig(batch_size=4, seed=5, learning_rate=1e-4)
    seed_everything(train_config.seed)
    trainer = Trainer(build_model(config), config, train_config)
    optimised = {id(p) for g in trainer.generator_optimizer.param_groups for p in g["params"]}
    guard = {id(p) for p in trainer.model.guard.parameters()}
    assert not optimised & guard and optimised == {id(p) for p in trainer.model.parameters()} - guard
    assert not any(p.requires_grad for p in trainer.model.guard.parameters())

    def guard_weights():  # parameters only: batch norm's running statistics follow every train-mode pass
        return torch.cat([p.detach().flatten() for p in trainer.model.guard.parameters()])

    guard_before, rest_before = guard_weights(), flat_weights(trainer.model)
    gen = torch.Generator().manual_seed(11)
    losses = [trainer.train_step(toy_batch(gen, n=4)).losses.guard for _ in range(3)]
    assert all(np.isfinite(losses))
    assert torch.equal(guard_weights(), guard_before)
    assert not torch.equal(flat_weights(trainer.model), rest_before)


def test_the_warm_up_trains_the_guard_alone_and_moves_nothing_else():
    from train.guard_warmup import warm_up_guard

    model = build_model(guarded_config()).eval()
    model.guard.requires_grad_(False)  # as a trainer leaves it: the warm-up trains it all the same
    guard = {id(p) for p in model.guard.parameters()}
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("guard")}
    gen = torch.Generator().manual_seed(21)
    seen = []
    losses = warm_up_guard(model, iter(lambda: toy_batch(gen, n=8), None), steps=40,
                           on_step=lambda i, n, loss: seen.append((i, n)))
    assert seen[0] == (1, 40) and seen[-1] == (40, 40) and len(losses) == 40
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    for key, value in model.state_dict().items():
        if key in before:
            torch.testing.assert_close(value, before[key], msg=key)
    assert not model.guard.training and all(id(p) in guard for p in model.guard.parameters())
    assert not any(p.requires_grad for p in model.guard.parameters())  # left frozen, as it was found
    test = toy_batch(torch.Generator().manual_seed(98), n=8)
    with torch.no_grad():
        scores = model.guard_scores(test.depth).numpy()
    assert scores[test.label.numpy() == 1].min() > scores[test.label.numpy() == 0].max()


def test_a_non_finite_warm_up_loss_is_a_one_line_error():
    from train.guard_warmup import warm_up_guard

    model = build_model(guarded_config())
    bad = toy_batch(torch.Generator().manual_seed(1), n=4)
    bad.depth[0, 0, 0, 0] = float("nan")
    with pytest.raises(ModelError, match="warm-up diverged at step 1"):
        warm_up_guard(model, iter([bad]), steps=1)


def _dev_set(n_live: int = 400, n_attack: int = 40, seed: int = 0) -> SampleSet:
    rng = np.random.default_rng(seed)
    n = n_live + n_attack
    is_attack = np.r_[np.zeros(n_live), np.ones(n_attack)].astype(np.int8)
    depth = rng.random((n, 1, SIZE, SIZE)).astype(np.float32)
    return SampleSet(rng.integers(0, 256, (n, 3, SIZE, SIZE), dtype=np.uint8),
                     np.rint(depth * DEPTH_SCALE).astype(np.uint16), is_attack,
                     np.where(is_attack == 1, "print", ""), np.array([f"s{i % 7}" for i in range(n)]),
                     np.full(n, ""))


def test_calibration_places_the_guard_to_refuse_at_most_its_share_of_dev_live_faces():
    from train.run import guard_scores_on, place_guard

    model = build_model(guarded_config()).eval()
    with torch.no_grad():  # spread the untrained guard's scores out
        model.guard.head.weight.mul_(40.0)
    dev = _dev_set()
    threshold = 0.5
    network = np.where(dev.is_attack == 1, 0.9, 0.1)  # the network alone refuses no live face
    network[-5:] = 0.2  # and misses five attacks
    report = place_guard(model, dev, network, threshold)
    info = report["depth_guard"]
    assert float(model.guard_offset) == pytest.approx(info["offset"]) == pytest.approx(threshold - info["line"])
    guard = guard_scores_on(model, dev)  # as calibration scores them
    live = dev.is_attack == 0
    assert len(np.unique(guard[live])) > 300  # the line falls between distinct scores
    refused = int(np.sum(guard[live] >= info["line"]))
    assert 1 <= refused <= GUARD_LIVE_SHARE * live.sum()
    assert info["dev_live_refused_by_guard"] == pytest.approx(refused / live.sum())
    assert report["bpcer"] == pytest.approx(refused / live.sum())  # the OR: the guard's refusals are the door's
    caught_late = int(np.sum(guard[-5:] >= info["line"]))
    assert info["dev_attacks_only_the_guard_caught"] == caught_late


def test_the_guards_line_holds_for_the_owners_of_the_perturbed_dev_copy_too():
    """Read at its map's highest locations, a noisy depth camera raises an owner's guard score: the line
    is the higher of the clean and the perturbed dev owners' lines, so neither loses more than the share."""
    from train.run import guard_scores_on, place_guard

    model = build_model(guarded_config()).eval()
    with torch.no_grad():
        model.guard.head.weight.mul_(40.0)
    dev = _dev_set()

    def owners(samples):
        return guard_scores_on(model, samples)[samples.is_attack == 0]

    # the perturbed copy: five more owners look like dev's highest-scoring one (1.25 % of them, above the share)
    depth = dev.depth.copy()
    depth[1:6] = depth[int(np.argmax(owners(dev)))]
    noisy = dataclasses.replace(dev, depth=depth)
    network = np.where(dev.is_attack == 1, 0.9, 0.1)
    info = place_guard(model, dev, network, 0.5, noisy)["depth_guard"]
    assert info["line_perturbed_dev"] > info["line_clean_dev"]  # the copy's owners set the line
    assert info["line"] == info["line_perturbed_dev"]
    for samples in (dev, noisy):
        assert np.mean(owners(samples) >= info["line"]) <= GUARD_LIVE_SHARE
    assert np.mean(owners(noisy) >= info["line_clean_dev"]) > GUARD_LIVE_SHARE  # the clean line alone would not hold
    without = place_guard(model, dev, network, 0.5)["depth_guard"]
    assert without["line"] == without["line_clean_dev"] == info["line_clean_dev"]
    assert without["line_perturbed_dev"] is None


def test_calibration_refuses_a_dev_set_without_live_faces():
    from edge.errors import DatasetError
    from train.run import place_guard

    dev = _dev_set(n_live=0, n_attack=6)
    with pytest.raises(DatasetError, match="no live faces"):
        place_guard(build_model(guarded_config()).eval(), dev, np.ones(6), 0.5)


def test_init_from_a_checkpoint_without_a_guard_keeps_its_weights_and_adds_a_fresh_guard(tmp_path):
    from train.run import TrainJob, initial_model, run_model_config

    path, old = _saved(tmp_path, small_config())
    job = TrainJob(preset="edge", init=path, depth_guard=True)
    config = dataclasses.replace(run_model_config(job), name=small_config().name, input_size_px=SIZE)
    assert config.depth_guard
    model = initial_model(config, job)
    kept = old.state_dict()
    for key, value in model.state_dict().items():
        if key.startswith("guard"):
            continue
        torch.testing.assert_close(value, kept[key], msg=key)
    assert model.guard is not None and float(model.guard_offset) == GUARD_OFFSET_OFF


def test_init_keeps_a_checkpoints_guard_unless_told_to_drop_it_which_is_refused(tmp_path):
    from train.run import TrainJob, initial_model, run_model_config

    path, _ = _saved(tmp_path, guarded_config())
    assert run_model_config(TrainJob(preset="edge", init=path)).depth_guard
    assert not run_model_config(TrainJob(preset="edge")).depth_guard
    with pytest.raises(ModelError, match="--depth-guard"):
        initial_model(small_config(), TrainJob(preset="edge", init=path, depth_guard=False))


def test_resume_refuses_a_different_guard_choice(tmp_path):
    from edge.errors import ConfigError
    from train.run import TrainJob, resumed_job

    path, _ = _saved(tmp_path, guarded_config(), "last.pt")
    job, config = resumed_job(TrainJob(out_dir=tmp_path, resume=True), path)
    assert job.depth_guard and config.depth_guard
    with pytest.raises(ConfigError, match="^--no-depth-guard: the run in .* has a depth guard; resume without"):
        resumed_job(TrainJob(out_dir=tmp_path, resume=True, depth_guard=False), path)
    plain, _ = _saved(tmp_path, small_config(), "plain.pt")
    with pytest.raises(ConfigError, match="^--depth-guard: the run in .* has no depth guard"):
        resumed_job(TrainJob(out_dir=tmp_path, resume=True, depth_guard=True), plain)


def test_a_guarded_model_exports_with_its_guard_in_the_score(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="the training extra (onnx) is not installed")
    from edge.face.preprocess import PreprocessConfig
    from engines.export import export_module
    from engines.metadata import ModelMetadata

    config = guarded_config()
    model = build_model(config).eval()
    model.set_guard_offset(0.45)
    meta = ModelMetadata(preprocess=PreprocessConfig(size_px=SIZE).to_metadata(), input_size=SIZE,
                         preset=config.name, threshold=0.5)
    path = export_module(model, tmp_path / "guarded.onnx", meta, "score").onnx_path
    rgb, depth = inputs(3, seed=4)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    score = session.run(["score"], {"rgb": rgb.numpy(), "depth": depth.numpy()})[0]
    with torch.no_grad():
        expected = torch.maximum(model.forward_fused(rgb, depth).spoof_map.mean(dim=(1, 2, 3)),
                                 model.guard_scores(depth) + 0.45).numpy()
    np.testing.assert_allclose(score, expected, atol=1e-4)
    assert bool((score > 0.9).all())  # the guard (about 0.5 + 0.45) set these scores


def test_the_int8_build_keeps_a_guard_in_fp32_by_default(tmp_path):
    """The guard reads depth alone, like the depth entry the INT8 build keeps in fp32 (docs/int8.md): by
    default its convolutions keep fp32 weights; asked for no fp32 parts, they are quantised."""
    onnx = pytest.importorskip("onnx", reason="the training extra (onnx) is not installed")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from calibration.calibset import CalibItem, build_calibration_set, load_calibration_set, save_calibration_set
    from edge.face.preprocess import PreprocessConfig
    from engines.export import export_module
    from engines.metadata import ModelMetadata
    from engines.quantize import GUARD_SCOPES, quantize_int8

    config = guarded_config()
    model = build_model(config).eval()
    model.set_guard_offset(0.2)
    contract = PreprocessConfig(size_px=SIZE).to_metadata()
    meta = ModelMetadata(preprocess=contract, input_size=SIZE, preset=config.name, threshold=0.5)
    fp32 = export_module(model, tmp_path / "guarded.onnx", meta, "score").onnx_path
    rgb, depth = inputs(16, seed=8)
    items = (CalibItem(r, d) for r, d in zip(rgb.numpy(), depth.numpy()))
    calib = load_calibration_set(save_calibration_set(build_calibration_set(items, 16, "test", contract),
                                                      tmp_path / "calib.npz"))

    def guard_convs_quantised(path) -> list[bool]:
        graph = onnx.load(str(path)).graph
        producers = {o: n for n in graph.node for o in n.output}
        convs = [n for n in graph.node if n.op_type == "Conv" and n.name.startswith(GUARD_SCOPES)]
        assert len(convs) == 5  # four stages and the head
        return [producers.get(n.input[1]) is not None and producers[n.input[1]].op_type == "DequantizeLinear"
                for n in convs]

    kept = quantize_int8(fp32, calib, tmp_path / "kept.onnx", target="cpu")
    assert "guard" in kept.fp32_parts and not any(guard_convs_quantised(kept.onnx_path))
    bare = quantize_int8(fp32, calib, tmp_path / "bare.onnx", target="cpu", fp32_parts=())
    assert all(guard_convs_quantised(bare.onnx_path))

