"""Candidate reads: every table a candidate for the bundled default is judged on, for one model and split.

A candidate is read at its stored threshold on dev (and the chosen one once on test), and compared
with the bundled model read the same way on the same machine (docs/model-selection.md):

- the clean photo split and its ``flat``, ``depth-smooth`` copies and its exposure copies ``low-key``,
  ``stop-under``, ``dim`` and ``bright`` (``photo:1200`` dev, ``photo:2400``
  test, the split sizes of every read since the thirty-second session; ``--photo-count 2400`` reads dev
  at twice its size, a superset of ``photo:1200`` dev, when one face decides a line there);
- the procedural split, clean (``synthetic:1200``);
- the ``flat``, ``grey``, ``glasses`` and ``combined`` copies of **both worlds joined**
  (``synthetic:1200+photo:N``): a copy draws its perturbations face by face in order, so the joined
  set is its own draw and its BPCER is not the two worlds' reads pooled (the same model reads glasses
  4.51 % joined, 4.18 % pooled);
- unseen heads (``tools/novel_heads.py``), and the robust score (``tools/robust_score.py``).

Each read's JSON is written under ``--out`` as ``NAME-SPLIT-{photo,procedural,both,heads,score}.json``
(``NAME-dev2400-...`` with ``--photo-count 2400`` on dev; the tools' own formats), so ``table`` costs
nothing to re-run. These reads lived in session scripts
outside the repository until a new machine lost them; here they are one command:

    python tools/candidate_reads.py read --model runs/x/model.onnx --name x --split dev --out out/reads
    python tools/candidate_reads.py table --split dev --out out/reads default x
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # robustness, novel_heads, robust_score

import robust_score  # noqa: E402

PROCEDURAL = "synthetic:1200"
PHOTO_COUNT = {"dev": 1200, "test": 2400}
PHOTO_KINDS = ("clean", "flat", "depth-smooth", "low-key", "dim", "stop-under", "bright")
BOTH_KINDS = ("flat", "grey", "glasses", "combined")
PARTS = ("photo", "procedural", "both", "heads", "score")


@dataclass(frozen=True)
class Read:
    """One robustness table: the dataset spec and the copies read on it."""

    part: str
    dataset: str
    kinds: tuple[str, ...]


def photo_count(split: str, count: int | None) -> int:
    """The photo faces a read of ``split`` takes: ``count``, or the split's own size."""
    if split not in PHOTO_COUNT:
        raise ValueError(f"split {split!r}: candidates are read on {' or '.join(PHOTO_COUNT)}")
    return PHOTO_COUNT[split] if count is None else count


def plan(split: str, count: int | None = None) -> tuple[Read, ...]:
    """The robustness tables of one split (unseen heads and the score come after them)."""
    photo = f"photo:{photo_count(split, count)}"
    return (Read("photo", photo, PHOTO_KINDS), Read("procedural", PROCEDURAL, ("clean",)),
            Read("both", f"{PROCEDURAL}+{photo}", BOTH_KINDS))


def part_path(out: Path, name: str, split: str, part: str, count: int | None = None) -> Path:
    """Where a part is kept: the split's name, with the photo count when it is not the split's own."""
    n = photo_count(split, count)
    return out / f"{name}-{split}{'' if n == PHOTO_COUNT[split] else n}-{part}.json"


def read(model: Path, name: str, split: str, out: Path, cache_dir: Path, model_dir: Path | None,
         count: int | None = None) -> dict:
    """Run every read of ``model`` on ``split`` (``count`` photo faces: default the split's own), write
    each part's JSON, return the table row."""
    import novel_heads
    import robustness

    out.mkdir(parents=True, exist_ok=True)
    parts: dict[str, dict] = {}

    def keep(part: str, table: dict) -> None:
        parts[part] = table
        part_path(out, name, split, part, count).write_text(json.dumps(table, indent=2, sort_keys=True))

    for r in plan(split, count):
        keep(r.part, robustness.table(model, r.dataset, split, cache_dir, model_dir, r.kinds))
    heads = novel_heads.read_model(model, photo_count(split, count), split, novel_heads.EVAL_MORPHS, model_dir,
                                   cache_dir, scanned=parts["photo"]["clean"])  # the same faces, read above
    keep("heads", {str(model): heads})
    photo = part_path(out, name, split, "photo", count)
    keep("score", robust_score.robust_score(photo, photo, part_path(out, name, split, "heads", count)))
    return row(parts)


def load(out: Path, name: str, split: str, count: int | None = None) -> dict[str, dict]:
    """The parts ``read`` wrote for ``name``; a missing or unreadable one is a one-line error naming the command."""
    parts = {}
    asked = "" if count is None else f" --photo-count {count}"
    for part in PARTS:
        path = part_path(out, name, split, part, count)
        if not path.exists():
            raise robust_score.ScoreInputError(
                f"{path}: no such file; run `tools/candidate_reads.py read --name {name} --split {split}{asked} "
                f"--out {out}`")
        try:
            parts[part] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:  # a read cut short leaves a truncated file
            raise robust_score.ScoreInputError(f"{path}: not a JSON table ({exc}); read {name} again") from None
    return parts


def row(parts: dict[str, dict]) -> dict[str, float]:
    """The columns candidates are compared on (fractions), from the parts ``read`` writes."""
    photo, both = parts["photo"]["clean"], parts["both"]
    return {
        "score": parts["score"]["score"],
        "photo ACER": photo["acer"],
        "mannequins pass": photo["apcer"].get("mannequin", 0.0),
        "photo worst APCER": photo["apcer_max"],
        "photo BPCER": photo["bpcer"],
        "photo worst person BPCER": photo["bpcer_worst_person"],
        "procedural ACER": parts["procedural"]["clean"]["acer"],
        "grey BPCER": both["grey"]["bpcer"],
        "glasses BPCER": both["glasses"]["bpcer"],
        "combined BPCER": both["combined"]["bpcer"],
        "combined AUC": both["combined"]["auc_attack_high"],
        "flat BPCER": both["flat"]["bpcer"],
        "flat worst APCER": both["flat"]["apcer_max"],
        # exposure copies (low-key since the forty-second session, the others since the forty-third; a part
        # read before has no such copy: not read)
        "low-key mannequins pass": _copy(parts["photo"], "low-key", _mannequins),
        "low-key BPCER": _copy(parts["photo"], "low-key", _bpcer),
        "stop-under mannequins pass": _copy(parts["photo"], "stop-under", _mannequins),
        "dim mannequins pass": _copy(parts["photo"], "dim", _mannequins),
        "bright mannequins pass": _copy(parts["photo"], "bright", _mannequins),
        "bright BPCER": _copy(parts["photo"], "bright", _bpcer),
        "photo EER": photo["eer"],
        "photo AUC": photo["auc_attack_high"],
        "threshold": photo["threshold"],
    }


def _copy(photo: dict[str, dict], kind: str, value) -> float:
    """``value`` of the photo part's ``kind`` copy; NaN for a part read before the copy existed."""
    return float(value(photo[kind])) if kind in photo else float("nan")


def _mannequins(table: dict) -> float:
    return table["apcer"].get("mannequin", 0.0)


def _bpcer(table: dict) -> float:
    return table["bpcer"]


def markdown(rows: dict[str, dict[str, float]]) -> str:
    """Rows as a markdown table: rates in percent, AUC and threshold as numbers, a copy not read as a dash."""
    columns = list(next(iter(rows.values())))
    lines = ["| name | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, r in rows.items():
        cells = ["-" if r[c] != r[c] else f"{r[c]:.4f}" if c == "threshold" else f"{r[c]:.3f}" if "AUC" in c
                 else f"{r[c]:.2%}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of photo faces")
    return n


def main(argv: list[str] | None = None) -> int:
    from edge.errors import EdgefasError

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("read", help="read one model on one split and write its parts")
    r.add_argument("--model", type=Path, required=True, help="an ONNX model")
    r.add_argument("--name", required=True, help="the candidate's name in file names and tables")
    r.add_argument("--cache-dir", type=Path, default=Path("out/cache"))
    r.add_argument("--model-dir", type=Path, default=Path("../shared/data/models"))
    t = sub.add_parser("table", help="print the rows of models already read")
    t.add_argument("names", nargs="+", help="names given to `read`")
    for p in (r, t):
        p.add_argument("--split", choices=tuple(PHOTO_COUNT), default="dev")
        p.add_argument("--out", type=Path, default=Path("out/reads"), help="folder of the parts (default: out/reads)")
        p.add_argument("--photo-count", type=_positive, default=None, metavar="N",
                       help=f"photo faces of the split (default: {PHOTO_COUNT['dev']} dev, {PHOTO_COUNT['test']} test; "
                            "more is a superset: clip k is the same whatever the count)")
    args = ap.parse_args(argv)
    if args.command == "read" and not args.model.is_file():
        print(f"error: --model {args.model}: no such file; export the run first (edgefas export)", file=sys.stderr)
        return 2
    try:
        if args.command == "read":
            rows = {args.name: read(args.model, args.name, args.split, args.out, args.cache_dir, args.model_dir,
                                    args.photo_count)}
        else:
            rows = {name: row(load(args.out, name, args.split, args.photo_count)) for name in args.names}
    except (EdgefasError, robust_score.ScoreInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.split} (photo:{photo_count(args.split, args.photo_count)}), stored thresholds; copies on both "
          "worlds joined")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
