"""Contact sheets of a model's mistakes: the owners it refuses and the attacks it lets through, as pictures.

A table says one test person in ten is refused or a third of the mannequins pass; it does not say what
those faces look like. This tool scores a split's preprocessed faces (the runtime's own crops, cached
like ``edgefas eval``'s) at the model's stored threshold, optionally on one of ``tools/robustness.py``'s
perturbed copies, and writes two pictures and a list:

- ``OUT-refused.png``: live faces at or above the threshold, the most confidently refused first;
- ``OUT-passed.png``: attacks below it, the most confidently passed first (``--species`` keeps one);
- ``OUT.json``: each shown face's index in the split, score, person and species, and the counts.

Each tile is the colour crop beside its depth crop (grey, as the model reads it: near = bright, holes black), labelled with the score, the
person and the species. Read the sheets of a dev split: looking at test faces to decide what to change
is tuning to test.

    python tools/contact_sheet.py --model runs/x/model.onnx --dataset photo:1200 --split dev \\
        --cache-dir out/cache --model-dir ../shared/data/models --out out/sheets/x-dev [--copy flat] \\
        [--species mannequin] [--count 24]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # robustness: the perturbed copies

from calibration.scoring import score_samples  # noqa: E402
from edge.datasets.sampleset import SampleSet, prepare_samples  # noqa: E402
from edge.errors import ConfigError, EdgefasError  # noqa: E402
from edge.face.preprocess import PreprocessConfig  # noqa: E402
from engines.runner import open_runner  # noqa: E402

COLUMNS = 6
LABEL_PX = 14  # the text strip above each tile


def wrong_side(scores: np.ndarray, is_attack: np.ndarray, pai: np.ndarray, threshold: float,
               species: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the refused live faces (score >= threshold, highest first) and of the passed attacks
    (score < threshold, lowest first; of ``species`` only when given). Decisions as the runtime makes
    them (engines.outputs.classify_attack: score >= threshold is an attack)."""
    attack = is_attack.astype(bool)
    refused = np.flatnonzero(~attack & (scores >= threshold))
    passed = np.flatnonzero(attack & (scores < threshold) & (True if species is None else pai == species))
    return refused[np.argsort(-scores[refused], kind="stable")], passed[np.argsort(scores[passed], kind="stable")]


def tile(samples: SampleSet, index: int, label: str) -> np.ndarray:
    """One face as BGR uint8: colour crop and depth crop side by side under a label strip."""
    rgb = samples.rgb[index].transpose(1, 2, 0)
    colour = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    depth = samples.depth[index, 0]
    near = (depth.astype(np.float32) * (255.0 / 65535.0)).clip(0, 255).astype(np.uint8)  # normalised: near = bright, hole = 0
    pair = np.hstack([colour, cv2.cvtColor(near, cv2.COLOR_GRAY2BGR)])
    strip = np.zeros((LABEL_PX, pair.shape[1], 3), np.uint8)
    cv2.putText(strip, label, (2, LABEL_PX - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([strip, pair])


def sheet(samples: SampleSet, indices: np.ndarray, scores: np.ndarray, columns: int = COLUMNS) -> np.ndarray | None:
    """The tiles of ``indices`` in rows of ``columns``; None when there is nothing to show."""
    if len(indices) == 0:
        return None
    tiles = [tile(samples, int(i), f"{scores[i]:.3f} {samples.subject[i]} {samples.pai[i] or 'live'}") for i in indices]
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    return np.vstack([np.hstack(tiles[r:r + columns]) for r in range(0, len(tiles), columns)])


def entries(samples: SampleSet, indices: np.ndarray, scores: np.ndarray) -> list[dict]:
    return [{"index": int(i), "score": float(scores[i]), "subject": str(samples.subject[i]),
             "species": str(samples.pai[i]) or "live"} for i in indices]


def contact_sheets(model: Path, dataset: str, split: str, out: Path, cache_dir: Path | None, model_dir: Path | None,
                   copy: str = "clean", species: str | None = None, count: int = 24) -> dict:
    """Score, pick, draw and write; returns the JSON summary (also written to ``OUT.json``)."""
    if count < 1:
        raise ConfigError(f"--count {count}: show at least one face")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist; create it or name another")
    from robustness import KINDS, perturb

    if copy not in KINDS:
        raise ConfigError(f"--copy {copy!r} is not one of {', '.join(KINDS)}")
    runner = open_runner(model)
    try:
        if runner.threshold is None:
            raise ConfigError(f"--model {model} has no stored threshold to judge faces by; give it one with "
                              f"`edgefas calibrate threshold` first")
        config = PreprocessConfig.from_metadata(runner.contract)
        samples = perturb(prepare_samples(dataset, split, config, "yunet", model_dir, cache_dir), copy)
        present = sorted(set(samples.pai[samples.is_attack.astype(bool)]))
        if species is not None and species not in present:
            raise ConfigError(f"--species {species!r}: no such attacks in {dataset} {split}; "
                              f"it holds {', '.join(present) or 'no attacks'}")
        scores = score_samples(runner, samples).scores
        threshold = float(runner.threshold)
    finally:
        runner.close()
    refused, passed = wrong_side(scores, samples.is_attack, samples.pai, threshold, species)
    summary = {"model": str(model), "dataset": dataset, "split": split, "copy": copy, "threshold": threshold,
               "species": species, "faces": len(samples), "live": int((samples.is_attack == 0).sum()),
               "refused": len(refused), "passed": len(passed),
               "attacks": int(samples.is_attack.sum() if species is None else (samples.pai == species).sum()),
               "shown_refused": entries(samples, refused[:count], scores),
               "shown_passed": entries(samples, passed[:count], scores)}
    for name, picked in (("refused", refused[:count]), ("passed", passed[:count])):
        picture = sheet(samples, picked, scores)
        path = out.with_name(f"{out.name}-{name}.png")
        if picture is None:
            path.unlink(missing_ok=True)  # an old sheet would say there were mistakes
        elif not cv2.imwrite(str(path), picture):
            raise ConfigError(f"--out {out}: could not write {path}")
    out.with_name(out.name + ".json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="fp32 or INT8 ONNX file with its stored threshold")
    ap.add_argument("--dataset", default="photo:1200")
    ap.add_argument("--split", default="dev", help="dev (default); test only to report, never to choose")
    ap.add_argument("--out", type=Path, required=True, help="prefix: OUT-refused.png, OUT-passed.png, OUT.json")
    ap.add_argument("--copy", default="clean", help="a tools/robustness.py copy (clean, flat, grey, ...)")
    ap.add_argument("--species", default=None, help="passed attacks of this species only (e.g. mannequin)")
    ap.add_argument("--count", type=int, default=24, help="faces per sheet (default 24)")
    ap.add_argument("--cache-dir", type=Path, default=Path("out/cache"))
    ap.add_argument("--model-dir", type=Path, default=Path("../shared/data/models"))
    args = ap.parse_args(argv)
    try:
        s = contact_sheets(args.model, args.dataset, args.split, args.out, args.cache_dir, args.model_dir,
                           args.copy, args.species, args.count)
    except EdgefasError as exc:  # a missing model, a bad spec or option: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.model.name} on {args.dataset} {args.split} ({args.copy}), threshold {s['threshold']:.4f}: "
          f"{s['refused']} of {s['live']} owners refused, {s['passed']} of {s['attacks']} attacks passed; "
          f"sheets beside {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
