"""Operating points: what each threshold target costs in owners refused and buys in attacks caught.

Thresholds are chosen on a dev split with the targets of ``edgefas calibrate threshold --target``
(``eer``, ``bpcer=RATE``: the lowest worst-case APCER with BPCER <= RATE, ``bpcer@apcer=RATE``) and
read on held-out test splits, clean and as the combined camera copy of ``tools/robustness.py``
(colour, blur, depth noise and holes, JPEG), per attack species. Nothing is written into a model:
the table is for choosing a target before running ``calibrate threshold`` with it.

``--across-people`` asks the question a test split of a few people cannot answer: how far does an
operating point chosen on some people carry to a person it has not seen? On the dev split alone,
each person of a world (subjects named ``WORLD/...``, default ``photo``) is held out in turn, the
threshold is chosen on the rest of dev and read on that person's own faces (live and attacks made
from their photographs).

    python tools/operating_points.py --model engines/models/edge-synthetic.onnx \\
        --dev synthetic:1200+photo:1200 --test photo:1200 --test synthetic:1200 \\
        --targets eer,bpcer=3%,bpcer=5%,bpcer=10% --cache-dir out/cache --model-dir ../shared/data/models
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.metrics import pad_report  # noqa: E402
from calibration.threshold import choose_threshold, held_out_thresholds, parse_target  # noqa: E402


@dataclass(frozen=True)
class Scored:
    """Scores of one labelled set (score >= threshold = attack) and each face's species ('' = live)."""

    scores: np.ndarray
    is_attack: np.ndarray
    pai: np.ndarray
    subject: np.ndarray | None = None

    def subset(self, mask: np.ndarray) -> "Scored":
        return Scored(self.scores[mask], self.is_attack[mask], self.pai[mask],
                      None if self.subject is None else self.subject[mask])


def operating_points(dev: Scored, tests: Mapping[str, Scored], targets: Sequence[str]) -> list[dict]:
    """One row per target: the threshold chosen on ``dev`` and the ISO/IEC 30107-3 report of ``dev``
    and of every test set at that threshold."""
    rows = []
    for text in targets:
        target = parse_target(text)
        choice = choose_threshold(dev.scores, dev.is_attack, target, dev.pai)
        row = {"target": str(target), "threshold": choice.threshold, "dev": choice.report.to_json()}
        for name, s in tests.items():
            row[name] = pad_report(s.scores, s.is_attack, choice.threshold, s.pai).to_json()
        rows.append(row)
    return rows


def across_people(dev: Scored, targets: Sequence[str], world: str = "photo") -> list[dict]:
    """One row per target and held-out person of ``world``: the threshold chosen on the rest of
    ``dev`` and the report of that person's faces at it (the person's ``apcer`` covers the species
    made from their photographs)."""
    if dev.subject is None:
        raise ValueError("across_people needs each face's subject")
    people = sorted({str(s) for s in dev.subject if str(s).startswith(f"{world}/")})
    if len(people) < 2:
        raise ValueError(f"across_people needs two or more '{world}/' people in dev, found {len(people)}")
    rows = []
    for text in targets:
        target = parse_target(text)
        thresholds = held_out_thresholds(dev.scores, dev.is_attack, target, dev.pai, dev.subject, people)
        for person, threshold in thresholds.items():
            held = dev.subset(dev.subject.astype(str) == person)
            rows.append({"target": str(target), "person": person, "threshold": threshold,
                         "report": pad_report(held.scores, held.is_attack, threshold, held.pai).to_json()})
    return rows


def by_person(scored: Scored, threshold: float) -> dict[str, dict]:
    """The report of each subject's own faces at one threshold (a test split's people, for example)."""
    if scored.subject is None:
        raise ValueError("by_person needs each face's subject")
    names = np.unique(scored.subject.astype(str))
    return {str(n): pad_report(part.scores, part.is_attack, threshold, part.pai).to_json()
            for n in names for part in [scored.subset(scored.subject.astype(str) == n)]}


def across_people_markdown(rows: list[dict]) -> str:
    lines = ["| target | held-out person | threshold (rest of dev) | their faces |", "|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['person']} | {r['threshold']:.4f} | {_cell(r['report'])} |" for r in rows]
    return "\n".join(lines) + "\n\n(each cell: BPCER / worst-case APCER (species) / ACER)"


def _cell(report: dict) -> str:
    worst = max(report["apcer"].items(), key=lambda kv: kv[1], default=("-", 0.0))
    return f"{report['bpcer']:.2%} / {report['apcer_max']:.1%} ({worst[0]}) / {report['acer']:.2%}"


def markdown(rows: list[dict], names: Sequence[str]) -> str:
    head = "| target | threshold | dev | " + " | ".join(names) + " |"
    lines = [head, "|" + "---|" * (3 + len(names)),
             *(f"| {r['target']} | {r['threshold']:.4f} | {_cell(r['dev'])} | "
               + " | ".join(_cell(r[n]) for n in names) + " |" for r in rows)]
    return "\n".join(lines) + "\n\n(each cell: BPCER / worst-case APCER (species) / ACER)"


def _score(runner, samples) -> Scored:
    from calibration.scoring import score_samples

    return Scored(score_samples(runner, samples).scores, samples.is_attack.astype(bool), samples.pai,
                  np.asarray(samples.subject).astype(str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="ONNX model")
    ap.add_argument("--dev", default="synthetic:1200+photo:1200", help="dataset spec whose dev split chooses")
    ap.add_argument("--test", action="append", default=None,
                    help="dataset spec whose test split is read (repeat; default: photo:1200)")
    ap.add_argument("--targets", default="eer,bpcer=3%,bpcer=5%,bpcer=10%",
                    help="comma-separated calibrate-threshold targets")
    ap.add_argument("--dev-only", action="store_true",
                    help="read no test split (to choose a target without seeing test numbers)")
    ap.add_argument("--no-combined", action="store_true", help="skip the combined camera copy of each test set")
    ap.add_argument("--cache-dir", type=Path, default=Path("out/cache"))
    ap.add_argument("--model-dir", type=Path, default=Path("../shared/data/models"))
    ap.add_argument("--across-people", metavar="WORLD", nargs="?", const="photo", default=None,
                    help="also hold out each dev person of WORLD (default photo) in turn: threshold on the rest, "
                         "read on them")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    if not args.model.is_file():
        raise SystemExit(f"--model {args.model}: no such file; give an ONNX model from edgefas export")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for text in targets:
        parse_target(text)  # a mistyped target fails before anything is scored

    from edge.datasets.sampleset import prepare_samples
    from edge.face.preprocess import PreprocessConfig
    from engines.runner import open_runner
    from robustness import perturb

    runner = open_runner(args.model)
    try:
        config = PreprocessConfig.from_metadata(runner.contract)
        dev = _score(runner, prepare_samples(args.dev, "dev", config, "yunet", args.model_dir, args.cache_dir))
        tests: dict[str, Scored] = {}
        for spec in [] if args.dev_only else args.test or ["photo:1200"]:
            samples = prepare_samples(spec, "test", config, "yunet", args.model_dir, args.cache_dir)
            tests[f"{spec} test"] = _score(runner, samples)
            if not args.no_combined:
                tests[f"{spec} test, combined copy"] = _score(runner, perturb(samples, "combined"))
        stored = float(runner.threshold)
    finally:
        runner.close()
    rows = operating_points(dev, tests, targets)
    print(f"model {args.model} (stored threshold {stored:.4f}); thresholds chosen on {args.dev} dev")
    print(markdown(rows, list(tests)))
    people = []
    if args.across_people:
        try:
            people = across_people(dev, targets, args.across_people)
        except ValueError as err:
            raise SystemExit(f"--across-people {args.across_people}: {err}")
        print(f"\n{args.dev} dev, each {args.across_people} person held out in turn:")
        print(across_people_markdown(people))
        for name, scored in tests.items():
            if not name.endswith("combined copy"):
                print(f"\n{name}, each person at the stored threshold {stored:.4f}:")
                for person, report in by_person(scored, stored).items():
                    print(f"- {person}: {_cell(report)}")
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "stored_threshold": stored, "dev": args.dev,
                                         "rows": rows, "across_people": people}, indent=2))


if __name__ == "__main__":
    main()
