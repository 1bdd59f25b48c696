"""Which of the photo world's mannequins a model passes, by their paint.

A mannequin's paint is drawn per clip (``edge.capture.photo.scene.mannequin_look``): a skin tone or a
white, grey or black plastic, a base colour, and painted features or a blank head. A cached sample set
keeps no clip seed, so this tool walks the split's clips without rendering them
(``RenderedDataset.clips``), renders the mannequin clips only (150 frames for ``photo:2400``, about a
minute), runs the face finder on each as the cache did, and pairs the found ones, in order, with the
cached mannequin faces. Each model is read at its stored threshold and, with ``--bpcer``, at the score
that refuses that share of the split's owners (the same operating point for every model):

    python tools/mannequin_paint.py --model engines/models/edge-synthetic.onnx --model runs/x/model.onnx \\
        --split dev --count 2400 --bpcer 0.02

Dev only by habit: a test split read for a diagnosis is no longer held out (docs/model-selection.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.errors import EdgefasError  # noqa: E402

DARK = 0.45  # luma below which a paint is dark: the black plastics and the darkest third of the skin tones


@dataclass(frozen=True)
class Mannequin:
    """One cached mannequin face: its clip's paint and the person whose head and hair it has."""

    plastic: str
    lightness: float
    blank: bool
    subject: str


def groups(m: Mannequin) -> tuple[str, ...]:
    """The rows of the table one mannequin counts in."""
    return (f"plastic {m.plastic}", "dark paint" if m.lightness < DARK else "light paint",
            "blank head" if m.blank else "painted features", f"person {m.subject}")


def breakdown(mannequins: list[Mannequin], scores: np.ndarray, threshold: float) -> dict[str, tuple[int, int]]:
    """{row: (passed, shown)}: a mannequin passes when its score is below ``threshold`` (attack-high)."""
    if len(mannequins) != len(scores):
        raise ValueError(f"{len(mannequins)} mannequins but {len(scores)} scores")
    table: dict[str, list[int]] = {}
    for m, s in zip(mannequins, scores):
        for row in ("all", *groups(m)):
            cell = table.setdefault(row, [0, 0])
            cell[0] += int(s < threshold)
            cell[1] += 1
    order = sorted(table, key=lambda r: (r != "all", r.split(" ")[0], r))
    return {r: (table[r][0], table[r][1]) for r in order}


def owner_threshold(scores: np.ndarray, is_attack: np.ndarray, species: np.ndarray, bpcer: float) -> float:
    """The score that refuses at most ``bpcer`` of the owners, as ``--threshold-target bpcer=RATE`` places
    a model's own (:func:`calibration.threshold.choose_threshold`)."""
    from calibration.threshold import choose_threshold

    return choose_threshold(scores, is_attack, f"bpcer={bpcer}", species).threshold


def pair(looks: list[Mannequin], cached_subjects: np.ndarray, source: str) -> list[Mannequin]:
    """The rendered, found mannequins matched to the cache's, in order; a count or a person that differs
    is a one-line error (the cache was built by another version of the world or another face finder)."""
    if len(looks) != len(cached_subjects) or any(m.subject != str(s) for m, s in zip(looks, cached_subjects)):
        raise EdgefasError(f"{source}: {len(cached_subjects)} cached mannequin faces, {len(looks)} found again in "
                           "the render (or another person in order): the cache is not this world's; delete it "
                           "and read again")
    return looks


def rendered_mannequins(count: int, split: str, config, model_dir: Path | None) -> list[Mannequin]:
    """The split's mannequin frames the face finder keeps, in the cache's order, each with its paint."""
    from edge.capture.photo.scene import mannequin_look, mannequin_paint_rng
    from edge.datasets.photo import PhotoDataset
    from edge.datasets.sampleset import preprocess_raw
    from edge.face.finder import open_face_finder

    dataset = PhotoDataset(count, split)
    finder = open_face_finder("yunet", model_dir, config.detect_width_px)
    found = []
    for scenario, seed, frames in dataset.clips():
        if scenario != "mannequin":
            continue
        look = mannequin_look(mannequin_paint_rng(seed))
        for raw in dataset.render_clip(scenario, seed, frames):
            if preprocess_raw(raw, finder, config) is not None:
                found.append(Mannequin(look.plastic, look.lightness, look.blank, raw.subject))
    return found


def read(models: list[Path], count: int, split: str, bpcer: float | None, cache_dir: Path,
         model_dir: Path | None) -> dict:
    """Each model's breakdown at its stored threshold (and at the owner-matched one with ``bpcer``)."""
    from calibration.scoring import score_samples
    from edge.datasets.sampleset import prepare_samples
    from edge.face.preprocess import PreprocessConfig
    from engines.runner import open_runner

    out: dict = {}
    looks: dict = {}  # by preprocessing contract: every model of one preset shares one render
    for path in models:
        runner = open_runner(path)
        try:
            if runner.threshold is None:  # as tools/contact_sheet.py: a mannequin passes below the stored one
                raise EdgefasError(f"--model {path} has no stored threshold to judge faces by; give it one with "
                                   "`edgefas calibrate threshold` first")
            config = PreprocessConfig.from_metadata(runner.contract)
            spec = f"photo:{count}"
            samples = prepare_samples(spec, split, config, "yunet", model_dir, cache_dir)
            is_mannequin = (samples.is_attack == 1) & (samples.pai == "mannequin")
            key = json.dumps(config.to_metadata(), sort_keys=True)
            if key not in looks:
                looks[key] = pair(rendered_mannequins(count, split, config, model_dir),
                                  samples.subject[is_mannequin], f"{spec} {split}")
            scores = score_samples(runner, samples).scores
            stored = float(runner.threshold)
            read_at = {f"stored threshold {stored:.4f}": stored}
            if bpcer is not None:
                at = owner_threshold(scores, samples.is_attack == 1, samples.pai, bpcer)
                read_at[f"owners refused {bpcer:.0%} ({at:.4f})"] = at
            out[str(path)] = {name: breakdown(looks[key], scores[is_mannequin], t) for name, t in read_at.items()}
        finally:
            runner.close()
    return out


def _name(model: str) -> str:
    """A run's folder for its runs/NAME/model.onnx, else the file's stem."""
    path = Path(model)
    return path.parent.name if path.name == "model.onnx" and path.parent.name else path.stem


def markdown(reads: dict) -> str:
    """One table: a row per paint group, a column per model and operating point, 'passed of shown'."""
    columns = [(model, point) for model, points in reads.items() for point in points]
    rows = list(next(iter(next(iter(reads.values())).values())))
    lines = ["| mannequins | " + " | ".join(f"{_name(m)} at {p}" for m, p in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for r in rows:
        cells = [f"{reads[m][p][r][0]} of {reads[m][p][r][1]}" for m, p in columns]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", required=True, help="an ONNX model (repeat for more)")
    ap.add_argument("--split", default="dev", choices=("train", "dev", "test"))
    ap.add_argument("--count", type=int, default=2400, help="photo faces of the split (photo:COUNT; default 2400)")
    ap.add_argument("--bpcer", type=float, default=None,
                    help="also read at the score refusing this share of the split's owners, e.g. 0.02")
    ap.add_argument("--cache-dir", type=Path, default=Path("out/cache"))
    ap.add_argument("--model-dir", type=Path, default=Path("../shared/data/models"))
    ap.add_argument("--json", type=Path, default=None, help="write the reads here too")
    args = ap.parse_args(argv)
    missing = [str(m) for m in args.model if not m.is_file()]
    if missing:
        print(f"error: --model {missing[0]}: no such file; export the run first (edgefas export)", file=sys.stderr)
        return 2
    if args.count < 1:
        print(f"error: --count {args.count}: give a positive number of photo faces", file=sys.stderr)
        return 2
    if args.bpcer is not None:
        from calibration.threshold import parse_target

        try:
            parse_target(f"bpcer={args.bpcer}")  # before any render: the rule owner_threshold reads with
        except EdgefasError:
            print(f"error: --bpcer {args.bpcer}: give a share of owners between 0 and 1, e.g. 0.02", file=sys.stderr)
            return 2
    try:
        reads = read(args.model, args.count, args.split, args.bpcer, args.cache_dir, args.model_dir)
    except (EdgefasError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json is not None:
        args.json.write_text(json.dumps(reads, indent=2))
    print(f"photo:{args.count} {args.split}: mannequins passed of shown (dark paint: luma < {DARK})")
    print(markdown(reads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
