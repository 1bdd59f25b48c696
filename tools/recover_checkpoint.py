"""Rebuild a trainable checkpoint (.pt) from a shipped fp32 ONNX file, to fine-tune it with `edgefas train --init`.

For a bundled model whose training checkpoint was not kept (docs/checkpoint-recovery.md). The batch
norms' statistics are measured on real faces of ``--dataset`` at ``--split`` (dev by default: never
the test split of a model you mean to judge later). The rebuilt network's scores are compared with
the file's on those faces; a mismatch beyond ``--tolerance`` writes nothing.

    python tools/recover_checkpoint.py engines/models/edge-wide-synthetic.onnx out/edge-wide.pt \\
        --dataset synthetic:1200+photo:1200 --cache-dir out/cache --model-dir ../shared/data/models
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.datasets.sampleset import prepare_samples  # noqa: E402
from edge.errors import EdgefasError  # noqa: E402
from edge.face.preprocess import PreprocessConfig  # noqa: E402
from engines.metadata import read_metadata  # noqa: E402


def face_batches(model: Path, dataset: str, split: str, count: int, cache_dir: Path, model_dir: Path | None,
                 batch: int = 32, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``count`` faces of the set, drawn evenly at random, as model-input batches."""
    config = PreprocessConfig.from_metadata(read_metadata(model).preprocess)
    samples = prepare_samples(dataset, split, config, "yunet", model_dir, cache_dir)
    pick = np.sort(np.random.default_rng(seed).permutation(len(samples))[:count])
    return [samples.arrays(pick[i:i + batch]) for i in range(0, len(pick), batch)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx", type=Path, help="the fp32 ONNX file (score or full variant)")
    ap.add_argument("out", type=Path, help="the checkpoint to write")
    ap.add_argument("--dataset", default="synthetic:1200+photo:1200")
    ap.add_argument("--split", default="dev", choices=("train", "dev"))
    ap.add_argument("--faces", type=int, default=512, help="faces to measure the batch norms on")
    ap.add_argument("--cache-dir", type=Path, default=Path("out/cache"))
    ap.add_argument("--model-dir", type=Path, default=Path("../shared/data/models"))
    ap.add_argument("--tolerance", type=float, default=1e-4, help="largest eval-mode |score| difference allowed")
    args = ap.parse_args()
    if not args.onnx.is_file():
        print(f"error: {args.onnx} does not exist; pass an fp32 .onnx written by edgefas export", file=sys.stderr)
        return 2
    if args.faces < 32:
        print("error: --faces must be at least 32 (the batch norms' statistics need faces)", file=sys.stderr)
        return 2
    from train.recover import rebuild_from_onnx

    try:
        batches = face_batches(args.onnx, args.dataset, args.split, args.faces, args.cache_dir, args.model_dir)
        result = rebuild_from_onnx(args.onnx, args.out, lambda: batches, tolerance=args.tolerance)
    except EdgefasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {result.checkpoint}: {result.fused_pairs} folded conv+batch-norm pairs, {result.named_weights} "
          f"weights by name; eval parity {result.parity_max_abs_score:.1e}, training-mode "
          f"{result.train_mode_max_abs_score:.1e} on {sum(len(b[0]) for b in batches)} faces")
    fits = ", ".join(f"{k} R^2 {v:.2f}" for k, v in result.head_fit.items())
    print(f"per-stream ESR heads fitted to the fused map: {fits}")
    if result.fresh:
        print(f"fresh (not in the score graph): {', '.join(result.fresh)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
