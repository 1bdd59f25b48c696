#!/usr/bin/env python3
"""Inputs for tools/bench_int8.py: an fp32 export of a preset and calibration / held-out sets of real crops.

Writes into ``--out``: ``<name>.onnx`` (the preset, random weights from ``--seed`` or a checkpoint's),
``calib.npz`` (the first ``--calib`` samples of a sample-set cache, e.g. ``out/cache/*.npz`` from
``edgefas train``) and ``holdout.npz`` (the next ``--holdout`` samples, never seen by calibration).
``--override`` builds an architecture variant without editing train/model/presets.py, e.g.
``--override '{"stem_channels": 16, "decoder_channels": [32, 16, 16]}'``. Usage:

    python tools/int8_bench_inputs.py --samples out/cache/synthetic-dev-XXXX.npz --out /tmp/int8 [--preset edge]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def build_variant(preset: str, override: dict):
    from train.model.presets import get_preset

    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in override.items()}
    return dataclasses.replace(get_preset(preset), **fields)


def spread_untrained(model, seed: int) -> None:
    """Give BatchNorm statistics and the fusion MLPs non-trivial values.

    A freshly built network has identity BatchNorm and zero-initialised fusion MLPs (fusion.py), so
    its activations are not those of a trained model; quantisation ranges would be unrealistically
    uniform. The spreads are arbitrary, chosen to keep activations of order one.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.2, generator=gen)
                module.running_var.uniform_(0.5, 2.0, generator=gen)
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.normal_(0.0, 0.1, generator=gen)
            elif isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, 0.0, 0.3, generator=gen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", required=True, help="sample-set cache (.npz, edge.datasets.sampleset format)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--preset", default="edge")
    parser.add_argument("--override", default="{}", help="JSON of ModelConfig fields to replace")
    parser.add_argument("--checkpoint", help="take weights from this checkpoint instead of random ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calib", type=int, default=64)
    parser.add_argument("--holdout", type=int, default=512)
    args = parser.parse_args(argv)

    import torch

    from calibration.calibset import CalibItem, build_calibration_set, save_calibration_set
    from train.checkpoint import CheckpointExtra, export_checkpoint, save_checkpoint
    from train.model.complexity import count_macs
    from train.model.network import build_model
    from train.model.objective import TrainConfig
    from edge.datasets.sampleset import load_sample_set

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    config = build_variant(args.preset, json.loads(args.override))
    model = build_model(config).eval()
    if args.checkpoint:
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)["state_dict"]
        model.load_state_dict(state, strict=False)
    else:
        spread_untrained(model, args.seed)
    samples = load_sample_set(Path(args.samples))
    contract = dict(samples.provenance["contract"])
    if int(contract["preprocess.size_px"]) != config.input_size_px:
        raise SystemExit(f"error: the samples are {contract['preprocess.size_px']} px, the model takes "
                         f"{config.input_size_px} px; use a sample set made for it")
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = save_checkpoint(args.out / f"{config.name}.pt", model, config, TrainConfig(), step=0,
                                 extra=CheckpointExtra(preprocess=contract, threshold=0.5))
    export = export_checkpoint(checkpoint, args.out / f"{config.name}.onnx", variant="score")
    source = f"{Path(args.samples).name}"
    for name, start, count in (("calib", 0, args.calib), ("holdout", args.calib, args.holdout)):
        rgb, depth = samples.arrays(slice(start, start + count))
        items = (CalibItem(r, d) for r, d in zip(rgb, depth))
        save_calibration_set(build_calibration_set(items, count, f"{source}[{start}:{start + count}]", contract),
                             args.out / f"{name}.npz")
    macs, params = count_macs(model, config)
    print(json.dumps({"onnx": str(export.onnx_path), "macs": macs, "params": params,
                      "config": config.to_dict()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
