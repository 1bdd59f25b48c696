"""Capture sessions into a ``folder:`` dataset with subject-disjoint train, dev and test splits.

Every frame of every take passes the runtime's own preprocessing (:func:`edge.face.preprocess.preprocess_frame`,
the path of live, eval and training): a frame without a face is dropped here, exactly as training
and the door would drop it, and one whose face fails a quality gate is kept and counted (training
keeps gated faces too; at the door they are "unknown"). The dataset stores whole frames, colour and
16-bit depth in millimetres, not crops: the crop and the depth window belong to the model's
contract, applied when a model is trained or evaluated, so one dataset serves any model.

Splits are assigned by subject, never by frame: a person is in exactly one of train, dev and test,
so a dev threshold and a test score are always about people the model did not train on. Within
that rule the assignment balances every presentation (live and each attack species) across the
splits by the requested shares, deterministically for a seed. A split that would be empty, or hold
no live faces or no attacks, and a subject asked into two splits, are refused before anything is
written.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.capture.folder import COLUMNS, LABELS_FILE, SPLIT_COLUMN
from edge.capture.source import SourceOptions, open_source
from edge.collect.sidecar import LIVE, SessionInfo, read_session
from edge.datasets.records import SPLITS
from edge.errors import ConfigError, DatasetError
from edge.face.finder import FaceFinder
from edge.face.preprocess import PreprocessConfig, preprocess_frame
from edge.frames import raw_depth_mm

log = logging.getLogger(__name__)

REPORT_FILE = "report.json"
# the photo library's split shares (edge/capture/photo/library.py): most people train, enough remain to measure
DEFAULT_SHARES = {"train": 0.6, "dev": 0.2, "test": 0.2}


@dataclass(frozen=True)
class Session:
    folder: Path
    info: SessionInfo


@dataclass
class StagedFrame:
    color: str  # paths relative to the dataset folder
    depth: str
    label: str
    pai: str
    subject: str
    presentation: str
    gate: str


@dataclass(frozen=True)
class BuildReport:
    out: Path
    splits: dict[str, str]  # subject -> split
    counts: dict[str, dict[str, dict[str, int]]]  # split -> subject -> presentation -> frames
    frames_read: int
    no_face: int
    gated: dict[str, int] = field(default_factory=dict)
    sessions: tuple[str, ...] = ()

    def per_split(self) -> dict[str, dict[str, int]]:
        """split -> presentation -> frames."""
        out: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            total: Counter[str] = Counter()
            for per in self.counts.get(split, {}).values():
                total.update(per)
            out[split] = dict(sorted(total.items()))
        return out

    def to_json(self) -> dict[str, object]:
        return {"out": str(self.out), "splits": self.splits, "counts": self.counts, "per_split": self.per_split(),
                "frames_read": self.frames_read, "no_face": self.no_face, "gated": self.gated,
                "sessions": list(self.sessions)}


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``SUBJECT=SPLIT`` pins from the command line; a bad form or a subject pinned twice is one line."""
    pins: dict[str, str] = {}
    for item in items:
        subject, sep, split = item.partition("=")
        subject, split = subject.strip(), split.strip()
        if not sep or not subject or split not in SPLITS:
            raise ConfigError(f"--assign '{item}' must be SUBJECT=SPLIT with SPLIT one of {', '.join(SPLITS)}")
        if pins.get(subject, split) != split:
            raise ConfigError(f"subject {subject} would span splits {pins[subject]} and {split} (--assign given "
                              f"twice); a subject belongs to one split")
        pins[subject] = split
    return pins


def check_shares(dev: float, test: float) -> dict[str, float]:
    if not (0 < dev < 1 and 0 < test < 1 and dev + test < 1):
        raise ConfigError(f"--dev-share ({dev:g}) and --test-share ({test:g}) must each be in (0, 1) and leave a "
                          f"share for train")
    return {"train": 1.0 - dev - test, "dev": dev, "test": test}


def read_sessions(folders: Sequence[Path]) -> list[Session]:
    """The sessions named on the command line, each once; a folder without a valid sidecar is one line."""
    seen: dict[Path, Session] = {}
    for folder in folders:
        folder = Path(folder)
        key = folder.resolve()
        if key not in seen:
            seen[key] = Session(folder, read_session(folder))
    if not seen:
        raise ConfigError("give at least one session folder (made by edgefas collect)")
    return list(seen.values())


def check_sessions(sessions: Sequence[Session], pins: dict[str, str]) -> None:
    """What the sidecars alone can refuse, before a frame is read: too few subjects for three
    subject-disjoint splits, and a pin for a subject no session holds."""
    subjects = sorted({s.info.subject for s in sessions})
    if len(subjects) < len(SPLITS):
        raise DatasetError(f"a split would be empty: the sessions hold {len(subjects)} subject(s) "
                           f"({', '.join(subjects)}) and train, dev and test need one each, never shared; "
                           f"collect sessions of more subjects")
    unknown = sorted(set(pins) - set(subjects))
    if unknown:
        raise ConfigError(f"--assign names subject {unknown[0]}, which none of the sessions holds (subjects: "
                          f"{', '.join(subjects)})")


def _tie_break(subject: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{subject}".encode()).hexdigest()


def plan_splits(counts: dict[str, Counter], shares: dict[str, float], seed: int = 0,
                pins: dict[str, str] | None = None) -> dict[str, str]:
    """subject -> split. ``counts`` is subject -> presentation -> frames (with a face).

    Greedy and deterministic: pinned subjects first, then the others by frame count (ties by a hash of
    the seed and the id); each goes to the split whose share of that subject's presentations is
    furthest below its target, weighted by how many frames of each it brings. While splits are still
    empty and only as many subjects are left as there are empty splits, the next subject fills one.
    """
    pins = dict(pins or {})
    unknown = sorted(set(pins) - set(counts))
    if unknown:
        raise ConfigError(f"--assign names subject {unknown[0]}, which none of the sessions holds (subjects: "
                          f"{', '.join(sorted(counts))})")
    totals: Counter[str] = Counter()
    for per in counts.values():
        totals.update(per)
    fill = {s: Counter() for s in SPLITS}
    out: dict[str, str] = {}
    for subject, split in sorted(pins.items()):
        out[subject] = split
        fill[split].update(counts[subject])
    rest = sorted((s for s in counts if s not in pins), key=lambda s: (-sum(counts[s].values()), _tie_break(s, seed)))
    for position, subject in enumerate(rest):
        mine = counts[subject]
        n = sum(mine.values())
        empty = [s for s in SPLITS if not fill[s]]
        candidates = empty if empty and len(rest) - position <= len(empty) else list(SPLITS)

        def deficit(split: str) -> float:
            return sum((shares[split] - fill[split][k] / totals[k]) * v / n for k, v in mine.items())

        best = max(candidates, key=lambda s: (deficit(s), -SPLITS.index(s)))
        out[subject] = best
        fill[best].update(mine)
    return out


def check_plan(plan: dict[str, str], counts: dict[str, Counter]) -> None:
    """Every split holds live faces and attacks, or a one-line refusal naming the split and what to do."""
    for split in SPLITS:
        subjects = sorted(s for s, where in plan.items() if where == split)
        if not subjects:
            raise DatasetError(f"split {split} would be empty: {len(plan)} subject(s) for 3 subject-disjoint splits; "
                               f"collect sessions of more subjects")
        live = sum(counts[s][LIVE] for s in subjects)
        attacks = sum(v for s in subjects for k, v in counts[s].items() if k != LIVE)
        if not live or not attacks:
            missing = "live faces" if not live else "attacks"
            raise DatasetError(f"split {split} would hold no {missing} (subjects {', '.join(subjects)}); collect "
                               f"{'live' if not live else 'attack'} sessions of these subjects, or move a subject "
                               f"with --assign SUBJECT={split}")


def _take_source(session: Session, take) -> str:
    path = session.folder / take.name
    return f"bag:{path}" if take.kind == "recording" else f"folder:{path}"


def build_dataset(sessions: Sequence[Session], out: Path, finder: FaceFinder, config: PreprocessConfig,
                  shares: dict[str, float] = DEFAULT_SHARES, seed: int = 0, pins: dict[str, str] | None = None,
                  every: int = 1, on_frame: Callable[[int, int], None] | None = None) -> BuildReport:
    """Preprocess every ``every``-th frame of every take, plan the splits, write ``out`` (labels.csv with a
    split column, colour and depth PNGs, report.json). ``out`` must not exist or be empty."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out '{out}' exists and is not empty; a dataset is built whole: give a new folder")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    total = sum(int(t.summary.get("frames", 0)) for s in sessions for t in s.info.takes)
    staged: list[StagedFrame] = []
    read = no_face = 0
    gated: Counter[str] = Counter()
    (out / "color").mkdir(parents=True, exist_ok=True)
    (out / "depth").mkdir(exist_ok=True)
    try:
        for session in sessions:
            info = session.info
            for take in info.takes:
                with open_source(_take_source(session, take), SourceOptions()) as source:
                    for index, frame in enumerate(source):
                        read += 1
                        if on_frame is not None:
                            on_frame(read, total)
                        if index % every:
                            continue
                        sample = preprocess_frame(frame, finder, config)
                        if sample is None:
                            no_face += 1
                            continue
                        if sample.gate:
                            gated[sample.gate] += 1
                        stem = f"{info.subject}/{session.folder.name}-{Path(take.name).stem}-{index:05d}.png"
                        for kind in ("color", "depth"):
                            (out / kind / info.subject).mkdir(exist_ok=True)
                        mm = np.clip(np.rint(raw_depth_mm(frame.depth_raw, frame.depth_scale_m)), 0, 65535)
                        if not (cv2.imwrite(str(out / "color" / stem), frame.color_bgr)
                                and cv2.imwrite(str(out / "depth" / stem), mm.astype(np.uint16))):
                            raise DatasetError(f"cannot write into '{out}'; check the disk and its permissions")
                        staged.append(StagedFrame(f"color/{stem}", f"depth/{stem}", info.label, info.pai,
                                                  info.subject, info.presentation, sample.gate or ""))
        counts: dict[str, Counter] = defaultdict(Counter)
        for row in staged:
            counts[row.subject][row.presentation] += 1
        for session in sessions:  # a subject whose every frame lacked a face still counts, as a refusal
            counts.setdefault(session.info.subject, Counter())
        empty = sorted(s for s, c in counts.items() if not c)
        if empty:
            raise DatasetError(f"no face was found in any frame of subject {empty[0]}'s sessions; check those takes' "
                               f"summaries (edgefas collect) and collect them again")
        plan = plan_splits(counts, shares, seed, pins)
        check_plan(plan, counts)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    with (out / LABELS_FILE).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS + (SPLIT_COLUMN,))
        for row in staged:
            writer.writerow((row.color, row.depth, row.label, row.pai, row.subject, plan[row.subject]))
    table: dict[str, dict[str, dict[str, int]]] = {s: {} for s in SPLITS}
    for subject, split in sorted(plan.items()):
        table[split][subject] = dict(sorted(counts[subject].items()))
    report = BuildReport(out, dict(sorted(plan.items())), table, read, no_face, dict(gated),
                         tuple(str(s.folder) for s in sessions))
    (out / REPORT_FILE).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    log.info("dataset %s: %d frames with a face of %d read, %d subjects", out, len(staged), read, len(plan))
    return report
