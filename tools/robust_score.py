"""Robust score: one number that counts a model's copies beside its clean split.

A candidate that wins on the clean photo split alone may be lucky (one mask is 0.7 ACER points on a
split of 70-76 faces per species) or may have traded robustness for it. The score is the mean of
four ACERs, all at the model's stored threshold:

- the clean photo split (``tools/robustness.py --dataset photo:N --kinds clean``);
- the ``flat`` copy (owners and attacks lit flat: refusals and passes both count);
- the ``depth-smooth`` copy (the renderer's depth texture smoothed away);
- unseen heads (``tools/novel_heads.py``: people on a head shape no split has).

Lower is better. It reads the JSON files those two tools write, so it costs nothing to re-read;
docs/model-selection.md says why these four and what was rejected.

    python tools/robust_score.py --photo out/photo.json --copies out/both.json --heads out/heads.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COPIES = ("flat", "depth-smooth")


class ScoreInputError(ValueError):
    """A JSON file that is missing, unreadable, or lacks a table the score needs."""


def _read(path: Path, option: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ScoreInputError(f"{option} {path}: no such file; write it with the tool the --help names") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ScoreInputError(f"{option} {path}: not a JSON table ({exc})") from None


def _acer(table: dict, kind: str, option: str, path: Path) -> float:
    row = table.get(kind)
    if not isinstance(row, dict) or "acer" not in row:
        raise ScoreInputError(f"{option} {path}: no '{kind}' copy; run tools/robustness.py with --kinds {kind}")
    return float(row["acer"])


def robust_score(photo: Path, copies: Path, heads: Path, model: str | None = None) -> dict[str, float]:
    """The four ACERs and their mean (``score``).

    ``heads`` is keyed by model path (``tools/novel_heads.py`` reads several at once): ``model`` picks
    one; None takes the only one and refuses a file with several.
    """
    parts = {"photo": _acer(_read(photo, "--photo"), "clean", "--photo", photo)}
    copy_table = _read(copies, "--copies")
    for kind in COPIES:
        parts[kind] = _acer(copy_table, kind, "--copies", copies)
    by_model = _read(heads, "--heads")
    if model is None:
        if len(by_model) != 1:
            raise ScoreInputError(f"--heads {heads}: {len(by_model)} models in it; name one with --model")
        model = next(iter(by_model))
    if model not in by_model:
        raise ScoreInputError(f"--heads {heads}: no model {model!r}; it has {sorted(by_model)}")
    parts["unseen heads"] = _acer(by_model[model], "unseen heads", "--heads", heads)
    parts["score"] = sum(parts.values()) / len(parts)
    return parts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, required=True, help="tools/robustness.py JSON with the clean photo split")
    ap.add_argument("--copies", type=Path, required=True,
                    help="tools/robustness.py JSON with the flat and depth-smooth copies")
    ap.add_argument("--heads", type=Path, required=True, help="tools/novel_heads.py JSON")
    ap.add_argument("--model", default=None, help="which model of the --heads file (needed when it has several)")
    ap.add_argument("--json", type=Path, default=None, help="also write the score here")
    args = ap.parse_args(argv)
    try:
        parts = robust_score(args.photo, args.copies, args.heads, args.model)
    except ScoreInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("| photo ACER | flat ACER | depth-smooth ACER | unseen-heads ACER | robust score |")
    print("|---|---|---|---|---|")
    print("| " + " | ".join(f"{parts[k]:.2%}" for k in ("photo", *COPIES, "unseen heads", "score")) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(parts, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
