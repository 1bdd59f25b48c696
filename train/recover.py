"""A trainable checkpoint rebuilt from a shipped ONNX file, for fine-tuning a model whose .pt is lost.

The exporter folds every batch norm into the convolution before it (``do_constant_folding``), so the
ONNX file holds each such pair as one fused weight and bias. Folding is not invertible on its own:
the batch norm's statistics are gone. What is kept is the function, and that is what fine-tuning
needs. The rebuilt network reproduces the file's scores exactly in eval mode and approximately in
training mode:

- every fused pair gets the fused weight in its convolution, and a batch norm whose running
  statistics are the measured per-channel mean and variance of that convolution's output on real
  faces, with scale and shift set so that the pair computes ``conv(x) + fused_bias`` in eval mode
  (exactly) and in training mode (up to how far a batch's statistics stray from the measured ones);
- every weight the exporter kept by name (linear layers, convolutions without a batch norm, ``alpha``)
  is copied as is;
- the per-stream early-spoof-regressor heads, which only training reads (so no export holds them),
  are fitted by ridge regression to reproduce the file's fused spoof map from each stream's own
  features on the same faces: a fresh head would start near zero for every face, and at a
  fine-tune's learning rate take hundreds of steps to say anything, its loss pulling on the shared
  features all that time;
- anything else the score graph does not use keeps a fresh initialisation, and is listed.

Which fused initializer belongs to which convolution is found by exporting a probe network of the
same preset whose weights are random and distinct, through the same exporter, and matching each of
its fused initializers to the pair it was folded from; the shipped file's initializer of the same
name is then that pair's. The probe and the shipped file must come from the same graph (names and
shapes are compared; anything else is a ModelError). docs/checkpoint-recovery.md.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge.errors import ModelError
from engines.export import export_module
from engines.metadata import load_onnx, read_metadata
from train.checkpoint import CheckpointExtra, save_checkpoint
from train.model.network import SpoofTraceNet, build_model
from train.model.objective import TrainConfig
from train.model.presets import file_config

EXPORT_PREFIX = "model."  # the exporter wraps the network as ``model``


@dataclass(frozen=True)
class Recovery:
    """What a rebuild did: the checkpoint written, its parity with the file, what it could not fill."""

    checkpoint: Path
    fused_pairs: int
    named_weights: int
    fresh: tuple[str, ...]  # state-dict keys the score graph does not carry (fresh initialisation)
    parity_max_abs_score: float  # eval-mode rebuilt network against the ONNX file, on the faces given
    train_mode_max_abs_score: float  # the same faces through training-mode batch norms
    head_fit: dict[str, float]  # per-stream ESR head: R^2 of its fit to the fused map


def _conv_bn_pairs(model: nn.Module) -> dict[str, tuple[str, nn.Conv2d, nn.BatchNorm2d]]:
    """Each batch norm that directly follows a convolution in a Sequential, by the batch norm's name."""
    pairs = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                prefix = f"{name}." if name else ""
                pairs[prefix + bn_name] = (prefix + conv_name, conv, bn)
    return pairs


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """The weight and bias the exporter makes of ``conv`` followed by ``bn`` in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    weight = conv.weight * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
    return weight.detach().numpy(), ((bias - bn.running_mean) * scale + bn.bias).detach().numpy()


def _initializers(path: Path) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {init.name: numpy_helper.to_array(init) for init in load_onnx(path).graph.initializer}


def _probe_map(model_config, alpha: float, variant: str, metadata) -> tuple[dict[str, tuple[str, str]], dict]:
    """Export a probe of random, distinct weights; map each fused initializer to (pair, 'weight'|'bias')."""
    generator = torch.Generator().manual_seed(1234)
    probe = build_model(model_config)
    with torch.no_grad():
        for param in probe.parameters():  # distinct, and small enough that the exporter's parity check holds
            param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
        for module in probe.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(1.0 + torch.randn(module.weight.shape, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
        probe.alpha.fill_(alpha)
    probe.eval()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "probe.onnx"
        export_module(probe, out, metadata, variant)
        inits = _initializers(out)
    folded = {bn_name: _fold(conv, bn) for bn_name, (_, conv, bn) in _conv_bn_pairs(probe).items()}
    mapping: dict[str, tuple[str, str]] = {}
    for name, value in inits.items():
        if name.startswith(EXPORT_PREFIX):
            continue
        for bn_name, (weight, bias) in folded.items():
            for part, expected in (("weight", weight), ("bias", bias)):
                if value.shape == expected.shape and np.allclose(value, expected, rtol=1e-4, atol=1e-5):
                    mapping[name] = (bn_name, part)
    return mapping, inits


def rebuild_from_onnx(onnx_path: str | Path, out_path: str | Path,
                      faces: Callable[[], list[tuple[np.ndarray, np.ndarray]]], tolerance: float = 1e-4) -> Recovery:
    """Write a checkpoint at ``out_path`` that computes what ``onnx_path`` computes.

    ``faces`` returns batches of model inputs (rgb [B,3,S,S], depth [B,1,S,S], float32 in [0, 1]),
    preferably real faces of the model's world: the batch norms' statistics are measured on them.
    Nothing is written when the rebuilt network's eval-mode scores differ from the file's by more
    than ``tolerance``.
    """
    onnx_path = Path(onnx_path)
    metadata = read_metadata(onnx_path)
    if metadata.precision != "fp32":
        raise ModelError(f"{onnx_path} is a {metadata.precision} file; rebuild from the fp32 export "
                         "(its quantised weights are rounded)")
    if not metadata.preset:
        raise ModelError(f"{onnx_path} names no preset; it was not exported by edgefas export")
    config = file_config(metadata)
    alpha = float(metadata.alpha or 0.0)
    mapping, probe_inits = _probe_map(config, alpha, metadata.variant, metadata)
    shipped = _initializers(onnx_path)
    if set(shipped) != set(probe_inits) or any(shipped[k].shape != probe_inits[k].shape for k in shipped):
        raise ModelError(f"{onnx_path} was exported from another '{config.name}' graph than this edgefas "
                         f"builds (initializer names or shapes differ); rebuild it with the edgefas that made it")

    model = build_model(config)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    touched: set[str] = set()
    for name, value in shipped.items():
        if name.startswith(EXPORT_PREFIX):
            key = name[len(EXPORT_PREFIX):]
            if key not in state:
                raise ModelError(f"{onnx_path}: weight '{key}' is not part of the '{config.name}' network")
            state[key] = torch.from_numpy(np.array(value, dtype=np.float32)).reshape(state[key].shape)
            touched.add(key)
    named = len(touched)
    pairs = _conv_bn_pairs(model)
    fused: dict[str, dict[str, np.ndarray]] = {}
    for name, (bn_name, part) in mapping.items():
        fused.setdefault(bn_name, {})[part] = shipped[name]
    incomplete = [bn for bn, parts in fused.items() if set(parts) != {"weight", "bias"}]
    if incomplete:
        raise ModelError(f"{onnx_path}: the folded weight or bias of {', '.join(sorted(incomplete))} was not found")
    for bn_name, parts in fused.items():
        conv_name, conv, bn = pairs[bn_name]
        state[f"{conv_name}.weight"] = torch.from_numpy(np.array(parts["weight"], dtype=np.float32))
        if conv.bias is not None:
            state[f"{conv_name}.bias"] = torch.zeros_like(state[f"{conv_name}.bias"])
        # identity batch norm plus the folded bias, until the statistics are measured below
        state[f"{bn_name}.running_mean"] = torch.zeros_like(bn.running_mean)
        state[f"{bn_name}.running_var"] = torch.full_like(bn.running_var, 1.0 - bn.eps)
        state[f"{bn_name}.weight"] = torch.ones_like(bn.weight)
        state[f"{bn_name}.bias"] = torch.from_numpy(np.array(parts["bias"], dtype=np.float32))
    model.load_state_dict(state, strict=True)
    model.eval()
    for bn_name in fused:
        touched |= {k for k in state if k.startswith((f"{bn_name}.", f"{pairs[bn_name][0]}."))}

    batches = faces()
    if not batches:
        raise ModelError("no faces to measure the batch norms on; pass a dataset with faces")
    _measure_batch_norms(model, {bn: pairs[bn][2] for bn in fused}, batches)
    head_fit = _fit_stream_heads(model, batches)
    touched |= {f"{name}.head.{p}" for name in head_fit for p in ("weight", "bias")}
    fresh = tuple(sorted(k for k in state if k not in touched and not k.endswith("num_batches_tracked")))
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    parity = _max_abs_score(model, session, batches, train_mode=False)
    if not parity <= tolerance:
        raise ModelError(f"the network rebuilt from {onnx_path} scores up to {parity:.2e} away from the file "
                         f"(tolerance {tolerance:g}); nothing written: report it with the file")
    train_mode = _max_abs_score(model, session, batches, train_mode=True)
    threshold = metadata.threshold if metadata.threshold is not None else math.nan
    out = save_checkpoint(out_path, model, config, TrainConfig(), step=0,
                          extra=CheckpointExtra(preprocess=dict(metadata.preprocess), threshold=threshold))
    return Recovery(out, len(fused), named, fresh, parity, train_mode, head_fit)


def _measure_batch_norms(model: SpoofTraceNet, norms: dict[str, nn.BatchNorm2d],
                         batches: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Set each folded batch norm's statistics to its input's mean and variance, keeping eval outputs."""
    sums: dict[str, list] = {name: [0.0, 0.0, 0] for name in norms}
    hooks = []
    for name, bn in norms.items():
        def hook(module, inputs, output, name=name):
            x = inputs[0].detach().double()
            acc = sums[name]
            acc[0] = acc[0] + x.sum(dim=(0, 2, 3))
            acc[1] = acc[1] + (x * x).sum(dim=(0, 2, 3))
            acc[2] += x.shape[0] * x.shape[2] * x.shape[3]
        hooks.append(bn.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for rgb, depth in batches:
                model(torch.from_numpy(rgb), torch.from_numpy(depth))
    finally:
        for handle in hooks:
            handle.remove()
    with torch.no_grad():
        for name, bn in norms.items():
            total, squares, count = sums[name]
            mean = total / count
            var = (squares / count - mean * mean).clamp_min(1e-6)
            shift = bn.bias.double().clone()  # the folded bias
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.copy_((mean + shift).float())


def _fit_stream_heads(model: SpoofTraceNet, batches, ridge: float = 1e-3) -> dict[str, float]:
    """Fit each stream's ESR head (a 3x3 conv to one channel) to the fused map by ridge regression
    on its own hidden features; returns each fit's R^2 on those faces."""
    heads = {"esr_rgb": model.esr_rgb.head, "esr_depth": model.esr_depth.head}
    gram = {name: None for name in heads}
    cross = {name: None for name in heads}
    y_sum = y_sq = 0.0
    count = 0
    with torch.no_grad():
        for rgb, depth in batches:
            _, feats_rgb, feats_depth = model._encode(model.exposure(torch.from_numpy(rgb)), torch.from_numpy(depth))
            hidden_rgb, hidden_depth, fused = model._fused_map(feats_rgb, feats_depth)
            y = fused.double().reshape(-1, 1)
            y_sum, y_sq, count = y_sum + float(y.sum()), y_sq + float((y * y).sum()), count + len(y)
            for name, hidden in (("esr_rgb", hidden_rgb), ("esr_depth", hidden_depth)):
                head = heads[name]
                cols = torch.nn.functional.unfold(hidden.double(), head.kernel_size, padding=head.padding)
                x = torch.cat([cols.transpose(1, 2).reshape(-1, cols.shape[1]),
                               torch.ones(len(y), 1, dtype=y.dtype)], 1)
                gram[name] = x.T @ x if gram[name] is None else gram[name] + x.T @ x
                cross[name] = x.T @ y if cross[name] is None else cross[name] + x.T @ y
        total = y_sq - y_sum * y_sum / count
        fit = {}
        for name, head in heads.items():
            a, b = gram[name], cross[name]
            w = torch.linalg.solve(a + ridge * torch.eye(len(a), dtype=a.dtype) * a.diagonal().mean(), b)
            residual = y_sq - 2 * float(w.T @ b) + float(w.T @ a @ w)
            head.weight.copy_(w[:-1, 0].reshape(head.weight.shape).float())
            head.bias.copy_(w[-1:, 0].float())
            fit[name] = 1.0 - residual / max(total, 1e-12)
    return fit


def _max_abs_score(model: SpoofTraceNet, session, batches, train_mode: bool) -> float:
    """Largest |score| difference between ``model`` (eval or training mode) and an ONNX Runtime session."""
    worst = 0.0
    model = copy.deepcopy(model).train(train_mode)  # a training-mode pass moves running statistics
    with torch.no_grad():
        for rgb, depth in batches:
            mine = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
            theirs = session.run(["score"], {"rgb": rgb, "depth": depth})[0].reshape(-1)
            worst = max(worst, float(np.max(np.abs(mine - theirs))))
    return worst
