"""The weight average of several fine-tunes of one model (a "soup"), calibrated like any run.

Runs fine-tuned from the same weights land in one basin; the uniform average of their weights is a
model of its own (Wortsman et al., "Model soups", ICML 2022). :func:`average_checkpoints` writes it
as a ``model.pt`` that ships like a training run's: BatchNorm statistics recomputed on training
batches (the averaged weights need their own; buffers are not averaged), alpha and the threshold
chosen on the dev split by the rule every run ends with (:func:`train.run.ship_model`). Every input
must be the same preset on the same streams. ``edgefas average`` is the command.

Weights other than equal interpolate between a model and its fine-tune (Wortsman et al., "Robust
fine-tuning of zero-shot models", CVPR 2022); one model alone is calibrated again, for instance at
another operating point (docs/weight-average.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from edge.errors import ConfigError, ModelError


def average_state(states: list[dict], weights: list[float] | None = None) -> dict:
    """The average of the floating-point parameters, uniform or by ``weights`` (one per state, normalised
    to sum 1); BatchNorm buffers are taken from the first (they are recomputed afterwards) and integer
    buffers (batch counters) likewise."""
    import torch

    shares = torch.tensor(normalised(weights, len(states)), dtype=torch.float64)
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point() and not _is_norm_buffer(key):
            stacked = torch.stack([s[key].to(torch.float64) for s in states])
            out[key] = torch.tensordot(shares, stacked, dims=1).to(first.dtype)
        else:
            out[key] = first.clone()
    return out


def normalised(weights: list[float] | None, count: int) -> list[float]:
    """Each model's share: ``weights`` divided by their sum, or equal shares when there are none. Refuses a
    count that is not one per model, and a weight that is not a positive finite number."""
    if not weights:
        return [1.0 / count] * count
    bad = [w for w in weights if not (math.isfinite(w) and w > 0)]
    if bad:
        raise ConfigError(f"--weight {bad[0]:g} is not a positive number; each model's weight must be above 0")
    if len(weights) != count:
        raise ConfigError(f"--weight is given {len(weights)} times for {count} models; give one per MODEL.pt, "
                          f"in their order, or none for equal weights")
    total = sum(weights)
    return [w / total for w in weights]


def _is_norm_buffer(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")


def load_all(paths: list[Path]):
    """Each checkpoint's model and info; refuses none, or mixed architectures or streams."""
    from train.checkpoint import load_checkpoint

    if not paths:
        raise ModelError("averaging needs at least one model.pt file")
    loaded = [load_checkpoint(path) for path in paths]
    first = loaded[0][1]
    for path, (_, info) in zip(paths[1:], loaded[1:]):
        if info.model_config != first.model_config or tuple(info.modalities) != tuple(first.modalities):
            raise ModelError(f"{path} is a '{info.preset}' model on {'+'.join(info.modalities)} but {paths[0]} "
                             f"is '{first.preset}' on {'+'.join(first.modalities)}; average runs of one preset "
                             f"and one set of streams")
    return loaded


def check_out(paths: list[Path], out: Path) -> None:
    """Refuses an output that is one of the inputs (the average would overwrite a source)."""
    if out.resolve() in {p.resolve() for p in paths}:
        raise ModelError(f"--out {out} is one of the inputs; write the average to a new file")


def average_checkpoints(paths: list[Path], dataset: str, dev_dataset: str, out: Path, cache_dir: Path | None = None,
                        model_dir: Path | None = None, detector: str = "auto", target: str = "eer",
                        seed: int = 0, weights: list[float] | None = None,
                        on_frame: Callable[[str, int, int], None] | None = None,
                        on_stage: Callable[[str], None] | None = None) -> dict:
    """Write the calibrated average of ``paths`` to ``out`` and ``<out stem>.average.json`` beside it;
    returns that summary (sources, their shares, data, alpha, threshold, dev EER). ``weights`` are the
    models' relative weights (default: equal). ``on_frame(split, i, n)`` reports
    preprocessing, ``on_stage(text)`` the slow steps after it."""
    from calibration.threshold import parse_target
    from edge.datasets.sampleset import prepare_samples
    from edge.face.preprocess import PreprocessConfig
    from train.run import ship_model

    parse_target(target)  # a typo is refused now, not after minutes of scoring
    shares = normalised(weights, len(paths))
    check_out(paths, out)
    loaded = load_all(paths)
    model, info = loaded[0]
    model.load_state_dict(average_state([m.state_dict() for m, _ in loaded], shares))
    preprocess = PreprocessConfig(size_px=info.model_config.input_size_px)

    def progress(split: str):
        return None if on_frame is None else (lambda i, n: on_frame(split, i, n))

    train_set = prepare_samples(dataset, "train", preprocess, detector, model_dir, cache_dir, progress("train"))
    dev_set = prepare_samples(dev_dataset, "dev", preprocess, detector, model_dir, cache_dir, progress("dev"))
    if on_stage is not None:
        on_stage(f"BatchNorm statistics on {len(train_set)} training faces, alpha and threshold on {len(dev_set)} dev faces")
    alpha, threshold, report = ship_model(model, info.model_config, info.train_config,
                                          max(i.step for _, i in loaded), train_set, dev_set, out, target, seed)
    summary = {"sources": [str(p) for p in paths], "shares": shares, "dataset": dataset, "dev_dataset": dev_dataset,
               "alpha": alpha, "threshold": threshold, "dev_eer": report.get("eer"),
               "alpha_rule": report.get("alpha_rule")}  # each alpha's readings, as a run's summary.json keeps them
    out.with_name(out.stem + ".average.json").write_text(json.dumps(summary, indent=2))
    return summary
