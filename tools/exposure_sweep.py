"""How a model's decisions move with the colour camera's exposure: every face's colour times a gain.

A door's light is not the renderer's: a dim lobby, a face in front of a bright street metered on the
background, a camera whose auto exposure settles a little low. This tool reads one dataset split at
several exposures (the colour crop times each ``--gains`` value, depth unchanged: the D435 ranges
with its infrared projector whatever the colour camera does) and prints, per gain, the owners refused
and each species passing at the model's stored threshold, and with ``--bpcer`` the attacks passing
at the score that refuses that share of the owners at that gain (the ranking, apart from the
threshold's shift). ``tools/robustness.py`` keeps four fixed steps of this as copies (``EXPOSURE_COPIES``:
``low-key`` x 0.35, ``stop-under`` x 0.5, ``dim`` x 0.8, ``bright`` x 1.25).

    python tools/exposure_sweep.py --model engines/models/edge-synthetic.onnx --dataset photo:2400 \\
        --split dev --gains 1 0.8 0.6 0.5 0.35 --bpcer 0.02

Dev only by habit: a test split read for a diagnosis is no longer held out (docs/model-selection.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # robustness: the exposed faces, the stored-threshold reads

from edge.datasets.sampleset import SampleSet  # noqa: E402
from edge.errors import EdgefasError  # noqa: E402
from robustness import exposed, judged_samples  # noqa: E402,F401  (exposed: this tool's faces, also for tests)


def read_gain(scores: np.ndarray, samples: SampleSet, threshold: float, bpcer: float | None) -> dict:
    """Owners refused and each species' attacks passing at ``threshold`` (and at the owner-matched score)."""
    live = samples.is_attack == 0
    species = sorted({str(p) for p in samples.pai[~live]})
    row = {"owners refused": float((scores[live] >= threshold).mean()),
           "passing": {s: [int((scores[samples.pai == s] < threshold).sum()), int((samples.pai == s).sum())]
                       for s in species}}
    if bpcer is not None:
        from calibration.threshold import choose_threshold

        at = choose_threshold(scores, ~live, f"bpcer={bpcer}", samples.pai).threshold
        row[f"owners refused {bpcer:.0%}"] = {"threshold": float(at), "passing": {
            s: int((scores[samples.pai == s] < at).sum()) for s in species}}
    return row


def sweep(model: Path, dataset: str, split: str, gains: list[float], bpcer: float | None, cache_dir: Path,
          model_dir: Path | None) -> dict:
    from calibration.scoring import score_samples

    with judged_samples(model, dataset, split, cache_dir, model_dir, "the exposures") as (runner, samples):
        threshold = float(runner.threshold)
        return {"threshold": threshold, "gains": {
            str(g): read_gain(score_samples(runner, exposed(samples, g)).scores, samples, threshold, bpcer)
            for g in gains}}


def markdown(result: dict, bpcer: float | None) -> str:
    rows = result["gains"]
    species = list(next(iter(rows.values()))["passing"])
    head = ["gain", "owners refused"] + [f"{s} pass" for s in species]
    if bpcer is not None:
        head += [f"{s} pass at {bpcer:.0%} owners" for s in species]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for gain, r in rows.items():
        cells = [gain, f"{r['owners refused']:.2%}"] + [f"{n} of {of}" for n, of in r["passing"].values()]
        if bpcer is not None:
            cells += [str(n) for n in r[f"owners refused {bpcer:.0%}"]["passing"].values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="an ONNX model with a stored threshold")
    ap.add_argument("--dataset", default="photo:2400")
    ap.add_argument("--split", default="dev", choices=("train", "dev", "test"))
    ap.add_argument("--gains", type=float, nargs="+", default=[1.0, 0.8, 0.6, 0.5, 0.35],
                    help="colour gains to read (1 = as rendered; 0.5 = one stop under)")
    ap.add_argument("--bpcer", type=float, default=None,
                    help="also count attacks passing at the score refusing this share of owners, e.g. 0.02")
    ap.add_argument("--cache-dir", type=Path, default=Path("out/cache"))
    ap.add_argument("--model-dir", type=Path, default=Path("../shared/data/models"))
    ap.add_argument("--json", type=Path, default=None, help="write the reads here too")
    args = ap.parse_args(argv)
    if not args.model.is_file():
        print(f"error: --model {args.model}: no such file; export the run first (edgefas export)", file=sys.stderr)
        return 2
    bad = [g for g in args.gains if not 0 < g <= 4]
    if bad:
        print(f"error: --gains {bad[0]}: give colour gains above 0 and at most 4 (1 = as rendered)", file=sys.stderr)
        return 2
    if args.bpcer is not None:
        from calibration.threshold import parse_target

        try:
            parse_target(f"bpcer={args.bpcer}")  # before any read: the rule read_gain places the point with
        except EdgefasError:
            print(f"error: --bpcer {args.bpcer}: give a share of owners between 0 and 1, e.g. 0.02", file=sys.stderr)
            return 2
    try:
        result = sweep(args.model, args.dataset, args.split, args.gains, args.bpcer, args.cache_dir, args.model_dir)
    except (EdgefasError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    print(f"{args.model.name} on {args.dataset} {args.split}, stored threshold {result['threshold']:.4f}")
    print(markdown(result, args.bpcer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
