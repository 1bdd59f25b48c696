"""Contract tests of the disentanglement network: shapes, trace algebra, fusion, budget, synthesis."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")

from edge.errors import ModelError  # noqa: E402
from train.model import PRESETS, count_macs, get_preset, summarise_preset  # noqa: E402
from train.model.discriminator import build_critics  # noqa: E402
from train.model.fusion import CrossModalFusion  # noqa: E402
from train.model.generator import compose_trace  # noqa: E402
from train.model.layers import RgbYuvInput  # noqa: E402
from train.model.network import build_model  # noqa: E402
from train.model.synthesis import landmark_field, make_plan, planned_trace, smooth_random_field, warp  # noqa: E402

EDGE_BUDGET_MACS = 1.5e9  # issue 5: at most 1.5 GMAC per sample for both streams


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _inputs(config, n=2):
    s = config.input_size_px
    return torch.rand(n, 3, s, s), torch.rand(n, 1, s, s)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_forward_shapes_for_every_preset(name):
    config = get_preset(name)
    model = build_model(config).eval()
    n = 1 if name == "paper" else 2
    with torch.no_grad():
        out = model(*_inputs(config, n))
    s, m = config.input_size_px, config.input_size_px // 8
    assert out.score.shape == (n,)
    assert out.spoof_map.shape == (n, 1, m, m)
    assert out.trace_rgb.shape == (n, 3, s, s)
    assert out.trace_depth.shape == (n, 1, s, s)
    assert torch.isfinite(out.score).all()


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ModelError) as err:
        get_preset("tiny")
    message = str(err.value)
    assert "\n" not in message
    for name in PRESETS:
        assert name in message


def test_wrong_input_shape_names_the_tensor():
    config = get_preset("edge")
    model = build_model(config)
    with pytest.raises(ValueError, match="depth"):
        model(torch.rand(1, 3, 128, 128), torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="rgb"):
        model(torch.rand(1, 3, 64, 64), torch.rand(1, 1, 64, 64))


def test_edge_preset_fits_mac_budget_and_is_smaller_than_paper():
    edge = summarise_preset("edge")
    paper = summarise_preset("paper")
    print(edge.as_line())
    print(paper.as_line())
    assert edge.macs_per_sample <= EDGE_BUDGET_MACS
    assert paper.macs_per_sample > 10 * edge.macs_per_sample
    assert 0 < edge.params < paper.params


def test_count_macs_matches_hand_count_for_a_single_conv():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv
            self.fc = torch.nn.Linear(8, 5)

        def forward(self, rgb, depth):
            return self.fc(self.conv(rgb).mean(dim=(2, 3)))

    config = dataclasses.replace(get_preset("edge"), input_size_px=16)
    macs, params = count_macs(Probe(), config)
    assert macs == 16 * 16 * 8 * 3 * 9 + 8 * 5
    assert params == (8 * 3 * 9 + 8) + (8 * 5 + 5)


def test_yuv_input_follows_bt601():
    layer = RgbYuvInput()
    white = torch.ones(1, 3, 2, 2)
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    yuv_white = layer(white)[0, 3:, 0, 0]
    yuv_red = layer(red)[0, 3:, 0, 0]
    torch.testing.assert_close(yuv_white, torch.tensor([1.0, 0.0, 0.0]), atol=1e-6, rtol=0)
    assert yuv_red[0].item() == pytest.approx(0.299, abs=1e-6)
    assert yuv_red[2].item() == pytest.approx(0.615, abs=1e-6)  # V of pure red = Vmax
    torch.testing.assert_close(layer(red)[:, :3], red)


def test_trace_is_sum_of_elements_and_live_is_input_minus_trace():
    config = dataclasses.replace(get_preset("edge"), input_size_px=64)
    model = build_model(config).eval()
    rgb, depth = _inputs(config)
    with torch.no_grad():
        out = model.forward_train(rgb, depth)
    for elements, image, trace, live in (
        (out.elements_rgb, rgb, out.trace_rgb, out.live_rgb),
        (out.elements_depth, depth, out.trace_depth, out.live_depth),
    ):
        s, b, c, t = elements
        assert s.shape[2:] == (1, 1) and b.shape[2:] == (1, 1)
        assert c.shape[2:] == (16, 16) and t.shape[2:] == (64, 64)
        up = torch.nn.functional.interpolate(c, scale_factor=4.0, mode="bilinear", align_corners=False)
        torch.testing.assert_close(trace, s * image + b + up + t, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(compose_trace(elements, image), trace)
        torch.testing.assert_close(live, image - trace)
    inference = model(rgb, depth)
    torch.testing.assert_close(inference.trace_rgb, out.trace_rgb)
    torch.testing.assert_close(inference.spoof_map, out.spoof_map)


def test_score_is_fused_map_mean_plus_alpha_times_trace_energy():
    config = dataclasses.replace(get_preset("edge"), input_size_px=64)
    model = build_model(config).eval()
    rgb, depth = _inputs(config)
    model.set_alpha(0.0)
    with torch.no_grad():
        base = model(rgb, depth)
        model.set_alpha(2.5)
        weighted = model(rgb, depth)
    torch.testing.assert_close(base.score, base.spoof_map.mean(dim=(1, 2, 3)))
    energy = weighted.trace_rgb.abs().mean(dim=(1, 2, 3)) + weighted.trace_depth.abs().mean(dim=(1, 2, 3))
    torch.testing.assert_close(weighted.score, base.score + 2.5 * energy)
    with pytest.raises(ValueError, match="alpha"):
        model.set_alpha(-1.0)


def test_fusion_with_zero_mlp_is_identity_and_otherwise_recalibrates():
    fusion = CrossModalFusion(8, 8, reduction=4, spatial=True, side=6)
    f_rgb, f_depth = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    for p in fusion.mlp.parameters():
        torch.nn.init.zeros_(p)
    out_rgb, out_depth = fusion(f_rgb, f_depth)
    torch.testing.assert_close(out_rgb, f_rgb)
    torch.testing.assert_close(out_depth, f_depth)
    torch.nn.init.normal_(fusion.mlp[0].weight)
    torch.nn.init.normal_(fusion.mlp[2].weight)
    changed_rgb, _ = fusion(f_rgb, f_depth)
    assert not torch.allclose(changed_rgb, f_rgb)
    # the depth stream influences the RGB weights: that is the cross-modal part
    other_rgb, _ = fusion(f_rgb, f_depth * 3.0)
    assert not torch.allclose(other_rgb, changed_rgb)


def test_rgb_only_ablation_zeroes_the_depth_stream_at_equal_cost():
    config = dataclasses.replace(get_preset("edge"), input_size_px=64)
    model = build_model(config).eval()
    rgb, depth = _inputs(config)
    full_macs, _ = count_macs(model, config)
    model.set_modalities(("rgb",))
    with torch.no_grad():
        a = model(rgb, depth)
        b = model(rgb, torch.rand_like(depth))
    assert torch.count_nonzero(a.trace_depth) == 0
    torch.testing.assert_close(a.score, b.score)  # depth content no longer matters
    assert count_macs(model, config)[0] == full_macs
    assert model.modalities == ("rgb",)


def test_discriminators_give_two_heads_at_three_scales():
    config = dataclasses.replace(get_preset("edge"), input_size_px=64)
    critics = build_critics(config)
    out = critics(torch.rand(2, 3, 64, 64), torch.rand(3, 3, 64, 64), torch.rand(2, 1, 64, 64), torch.rand(3, 1, 64, 64))
    for maps, n in ((out.live_rgb, 2), (out.spoof_rgb, 3), (out.live_depth, 2), (out.spoof_depth, 3)):
        assert len(maps) == config.discriminator_scales
        assert [tuple(m.shape) for m in maps] == [(n, 1, 8, 8), (n, 1, 4, 4), (n, 1, 2, 2)]


def test_warp_with_zero_field_is_identity_and_random_field_is_smooth():
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(warp(image, torch.zeros(2, 32, 32, 2)), image, atol=1e-5, rtol=0)
    field = smooth_random_field(2, 32, 0.05, gen)
    assert field.abs().max() <= 0.05 + 1e-6
    assert (field[:, 1:] - field[:, :-1]).abs().max() < 0.01  # neighbouring pixels move together


def test_landmark_field_carries_spoof_landmarks_onto_live_ones():
    target = torch.tensor([[[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.4, 0.7], [0.6, 0.7]]])
    source = target + torch.tensor([0.05, -0.03])
    field = landmark_field(source, target, 64)
    # at a target landmark the field points (in normalised units) to the source landmark
    x, y = (target[0, 2] * 64).long().tolist()
    torch.testing.assert_close(field[0, y, x], torch.tensor([0.1, -0.06]), atol=0.01, rtol=0)


def test_synthesis_uses_the_same_field_for_rgb_and_depth():
    config = dataclasses.replace(get_preset("edge"), input_size_px=64)
    model = build_model(config).eval()
    rgb, depth = _inputs(config, 4)
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0])
    with torch.no_grad():
        out = model.forward_train(rgb, depth)
    plan = make_plan(labels, 64, torch.Generator().manual_seed(3), amplitude=0.1, hard_fraction=0.0)
    assert plan.usable.tolist() == [True, False, True, False]
    assert all(labels[plan.partner] == 1)
    trace_rgb = planned_trace(plan, out.elements_rgb, rgb)
    trace_depth = planned_trace(plan, out.elements_depth, depth)
    # warping the partner's own (unwarped) trace with the plan's field reproduces both
    torch.testing.assert_close(trace_rgb, warp(out.trace_rgb[plan.partner], plan.displacement), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(trace_depth, warp(out.trace_depth[plan.partner], plan.displacement), atol=1e-5, rtol=1e-5)
    hard = make_plan(labels, 64, torch.Generator().manual_seed(3), amplitude=0.1, hard_fraction=1.0)
    assert bool((hard.factor < 1).all())


def test_fusion_refuses_maps_of_another_size():
    fusion = CrossModalFusion(8, 8, reduction=4, spatial=False, side=6)
    with pytest.raises(ValueError, match="6x6"):
        fusion(torch.randn(1, 8, 8, 8), torch.randn(1, 8, 8, 8))


def test_fusion_pooling_is_the_plain_mean_and_max_and_exports_as_pooling_ops(tmp_path):
    """GlobalAveragePool / MaxPool instead of ReduceMean / ReduceMax: the same numbers, ops INT8 keeps in 8 bits."""
    import onnx

    from train.model.fusion import global_max, global_mean

    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(global_mean(x), x.mean(dim=(2, 3)), atol=1e-6, rtol=0)
    assert torch.equal(global_max(x, 8), x.amax(dim=(2, 3)))
    fusion = CrossModalFusion(16, 16, reduction=4, spatial=False, side=8).eval()
    path = tmp_path / "fusion.onnx"
    torch.onnx.export(fusion, (x, x), str(path), dynamo=False, opset_version=17)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"GlobalAveragePool", "MaxPool"} <= ops and not {"ReduceMean", "ReduceMax"} & ops
