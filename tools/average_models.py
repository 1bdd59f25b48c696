"""Average the weights of several fine-tunes of one model (a "soup") and calibrate the result.

Runs fine-tuned from the same weights land in one basin; the uniform average of their weights is a
model of its own (Wortsman et al., "Model soups", ICML 2022). This writes it as a ``model.pt`` that
ships like any run's: the BatchNorm statistics recomputed on training batches (the averaged weights
need their own; buffers are not averaged), alpha and the threshold chosen on the dev split by the
rule every training run ends with (``train.run.ship_model``). Every input must be the same
preset with the same streams; anything else is refused in one line.

    python tools/average_models.py runs/a/model.pt runs/b/model.pt runs/c/model.pt \\
        --dataset synthetic:4000+photo:3000 --dev-dataset synthetic:1200+photo:1200 \\
        --cache-dir out/cache --model-dir ../shared/data/models --out runs/soup/model.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.threshold import parse_target  # noqa: E402
from edge.errors import EdgefasError, ModelError  # noqa: E402


def average_state(states: list[dict]) -> dict:
    """The uniform average of the floating-point parameters; BatchNorm buffers are taken from the first
    (they are recomputed afterwards) and integer buffers (batch counters) likewise."""
    import torch

    out = {}
    for key, first in states[0].items():
        if first.is_floating_point() and not _is_norm_buffer(key):
            out[key] = torch.stack([s[key].to(torch.float64) for s in states]).mean(dim=0).to(first.dtype)
        else:
            out[key] = first.clone()
    return out


def _is_norm_buffer(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")


def load_all(paths: list[Path]):
    """Each checkpoint's model and info; refuses fewer than two, a missing file, or mixed architectures."""
    from train.checkpoint import load_checkpoint

    if len(paths) < 2:
        raise ModelError("averaging needs at least two model.pt files")
    loaded = [load_checkpoint(path) for path in paths]
    first = loaded[0][1]
    for path, (_, info) in zip(paths[1:], loaded[1:]):
        if info.model_config != first.model_config or tuple(info.modalities) != tuple(first.modalities):
            raise ModelError(f"{path} is a '{info.preset}' model on {'+'.join(info.modalities)} but {paths[0]} "
                             f"is '{first.preset}' on {'+'.join(first.modalities)}; average runs of one preset "
                             f"and one set of streams")
    return loaded


def average_checkpoints(paths: list[Path], dataset: str, dev_dataset: str, out: Path, cache_dir: Path | None = None,
                        model_dir: Path | None = None, detector: str = "auto", target: str = "eer",
                        seed: int = 0) -> dict:
    """Write the calibrated average of ``paths`` to ``out``; returns a summary (sources, alpha, threshold)."""
    from edge.datasets.sampleset import prepare_samples
    from edge.face.preprocess import PreprocessConfig
    from train.run import ship_model

    loaded = load_all(paths)
    model, info = loaded[0]
    model.load_state_dict(average_state([m.state_dict() for m, _ in loaded]))
    preprocess = PreprocessConfig(size_px=info.model_config.input_size_px)
    train_set = prepare_samples(dataset, "train", preprocess, detector, model_dir, cache_dir)
    dev_set = prepare_samples(dev_dataset, "dev", preprocess, detector, model_dir, cache_dir)
    alpha, threshold, report = ship_model(model, info.model_config, info.train_config,
                                          max(i.step for _, i in loaded), train_set, dev_set, out, target, seed)
    summary = {"sources": [str(p) for p in paths], "dataset": dataset, "dev_dataset": dev_dataset,
               "alpha": alpha, "threshold": threshold, "dev_eer": report.get("eer")}
    out.with_name(out.stem + ".average.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help="model.pt files of runs fine-tuned from the same weights")
    ap.add_argument("--dataset", required=True, help="the runs' training data (BatchNorm statistics)")
    ap.add_argument("--dev-dataset", required=True, help="dev data for alpha and the threshold")
    ap.add_argument("--out", type=Path, required=True, help="model.pt to write")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--threshold-target", default="eer", help="operating point, as `edgefas calibrate threshold --target`")
    args = ap.parse_args(argv)
    if args.out.resolve() in {p.resolve() for p in args.models}:
        print(f"error: --out {args.out} is one of the inputs; write the average to a new file", file=sys.stderr)
        return 2
    try:
        parse_target(args.threshold_target)  # a typo is refused now, not after minutes of scoring
        summary = average_checkpoints(args.models, args.dataset, args.dev_dataset, args.out, args.cache_dir,
                                      args.model_dir, target=args.threshold_target)
    except EdgefasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: average of {len(args.models)} models, alpha {summary['alpha']}, "
          f"threshold {summary['threshold']:.4f}, dev EER {summary['dev_eer']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
