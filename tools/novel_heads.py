"""Unseen head geometry: a model on the photo world's clips with every person on a head no split has.

The photo world gives each person one of four head shapes (``edge.capture.photo.lift.HEADS``), and
every split draws from the same four, so the test split measures unseen *people* but not unseen
*heads*. This tool renders the same clips (same people, scenes and seeds: a clip draws its heads
after its people) with every head replaced by a morph between the scans (``morph-K``, K from a range
reserved here for evaluation) and reports each model at its stored threshold on both, side by side:
what changes is the head geometry alone.

    python tools/novel_heads.py --model engines/models/edge-synthetic.onnx --split test \\
        --cache-dir out/cache --model-dir ../shared/data/models --json out/novel-heads.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # robustness: the stored-threshold report

from edge.capture.photo.lift import MORPH_PREFIX  # noqa: E402
from edge.datasets.photo import PhotoDataset  # noqa: E402
from edge.datasets.sampleset import SampleSet, cache_path, cached_samples, prepare_samples  # noqa: E402
from edge.errors import EdgefasError  # noqa: E402
from edge.face.finder import open_face_finder  # noqa: E402
from edge.face.preprocess import PreprocessConfig  # noqa: E402
from engines.runner import open_runner  # noqa: E402

EVAL_MORPHS = range(1000, 1008)  # morph draws no training recipe uses (training morphs, if any, stay below 1000)


def novel_samples(count: int, split: str, morphs: range, config: PreprocessConfig, model_dir: Path | None,
                  cache_dir: Path) -> SampleSet:
    """The photo split's clips with every person on one of ``morphs``; cached like any dataset."""
    heads = tuple(f"{MORPH_PREFIX}{k}" for k in morphs)
    finder = open_face_finder("yunet", model_dir, config.detect_width_px)
    spec = f"photo:{count}#heads={heads[0]}..{heads[-1]}"
    return cached_samples(cache_path(cache_dir, spec, split, config, finder.name),
                          lambda: PhotoDataset(count, split, heads=heads), finder, config, spec, split)


def report(runner, samples: SampleSet) -> dict:
    from robustness import stored_threshold_report

    out = stored_threshold_report(runner, samples)
    out["faces"] = {"live": int((samples.is_attack == 0).sum()), "attack": int((samples.is_attack == 1).sum())}
    return out


def read_model(model: Path, count: int, split: str, morphs: range, model_dir: Path | None, cache_dir: Path,
               scanned: dict | None = None) -> dict:
    """``model`` on the split's clips on their scanned heads and on ``morphs``, at its stored threshold.

    ``scanned``: the same model's stored-threshold report on ``photo:COUNT`` of ``split`` already read
    (``tools/robustness.py``'s clean copy is that report): taken as the scanned heads' row, not scored again.
    """
    runner = open_runner(model)
    try:
        config = PreprocessConfig.from_metadata(runner.contract)
        if scanned is None:
            scanned = report(runner, prepare_samples(f"photo:{count}", split, config, "yunet", model_dir, cache_dir))
        else:
            scanned = {**scanned, "faces": {"live": int(scanned["n_live"]), "attack": int(scanned["n_spoof"])}}
        novel = novel_samples(count, split, morphs, config, model_dir, cache_dir)
        return {"scanned heads": scanned, "unseen heads": report(runner, novel)}
    finally:
        runner.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", required=True, help="an ONNX model (repeat for several)")
    ap.add_argument("--count", type=int, default=1200, help="frames of the photo split (as photo:COUNT)")
    ap.add_argument("--split", default="test", choices=("train", "dev", "test"))
    ap.add_argument("--morphs", default=f"{EVAL_MORPHS.start}-{EVAL_MORPHS.stop - 1}",
                    help="morph draws K (first-last) for the unseen heads")
    ap.add_argument("--cache-dir", type=Path, default=Path("out/cache"))
    ap.add_argument("--model-dir", type=Path, default=Path("../shared/data/models"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    try:
        first, _, last = args.morphs.partition("-")
        morphs = range(int(first), int(last) + 1)
    except ValueError:
        print(f"error: --morphs {args.morphs!r} must be FIRST-LAST, e.g. 1000-1007", file=sys.stderr)
        return 2
    if not morphs:
        print(f"error: --morphs {args.morphs!r} is empty; give FIRST <= LAST", file=sys.stderr)
        return 2
    result = {}
    try:
        for model in args.model:
            result[str(model)] = read_model(model, args.count, args.split, morphs, args.model_dir, args.cache_dir)
    except EdgefasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"photo {args.split}, stored thresholds; unseen heads = morph-{morphs.start}..{morphs.stop - 1}")
    print("| model | heads | ACER | BPCER | worst person BPCER | APCER worst | EER | AUC |")
    print("|---|---|---|---|---|---|---|---|")
    for model, rows in result.items():
        for heads, r in rows.items():
            print(f"| {Path(model).name} | {heads} | {r['acer']:.2%} | {r['bpcer']:.2%} | {r['bpcer_worst_person']:.2%} "
                  f"| {r['apcer_max']:.2%} | {r['eer']:.2%} | {r['auc_attack_high']:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
