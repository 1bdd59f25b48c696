"""``session.json``: the sidecar that says who is in a capture session, what they present and where.

A session is one folder holding one subject presenting one thing (their live face, or one attack
species) at one site, in one or more takes. The sidecar is the only place the label lives: a
recording carries frames, never the truth about them, so a session folder without its sidecar is
not data. One subject per session is what makes subject-disjoint splits possible later
(:mod:`edge.datasets.build` assigns whole subjects to train, dev or test); a folder that already
holds another subject, or another label, is refused rather than mixed.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge.datasets.records import SPECIES
from edge.errors import ConfigError, DatasetError

SESSION_FILE = "session.json"
SESSION_FORMAT = "edgefas-session/1"
LIVE = "live"
# what a session can present: a live face or one attack species of the dataset vocabulary (DESIGN §8)
PRESENTATIONS: tuple[str, ...] = (LIVE,) + SPECIES
# ids become file names and CSV cells: letters, digits, dot, dash, underscore; 64 characters is plenty
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_id(value: str, option: str) -> str:
    """A subject or site id as a user wrote it; anything that is not a plain id is one line naming ``option``."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ConfigError(f"{option} '{value}' is not an id: use 1-64 letters, digits, '.', '-' or '_' "
                          f"(an id names files; keep names of people out of it, e.g. s017)")
    return value


@dataclass(frozen=True)
class TakeRecord:
    """One take of a session: a folder of frames (``folder``) or a camera recording (``recording``)."""

    name: str  # file or folder name inside the session folder
    kind: str  # "folder" (labels.csv, color/, depth/) or "recording" (.db3/.bag)
    source: str  # the source spec it was taken from
    created_utc: str
    note: str
    summary: dict = field(default_factory=dict)  # TakeSummary.to_json()


@dataclass(frozen=True)
class SessionInfo:
    subject: str
    presentation: str  # "live" or an attack species
    site: str
    note: str = ""
    takes: tuple[TakeRecord, ...] = ()

    @property
    def label(self) -> str:
        return "live" if self.presentation == LIVE else "spoof"

    @property
    def pai(self) -> str:
        return "" if self.presentation == LIVE else self.presentation

    def to_json(self) -> dict[str, object]:
        return {"format": SESSION_FORMAT, "subject": self.subject, "label": self.label, "pai": self.pai,
                "site": self.site, "note": self.note, "takes": [asdict(t) for t in self.takes]}


def new_session_info(subject: str, presentation: str, site: str, note: str = "") -> SessionInfo:
    """A user's session description, checked: each problem is one line naming the option."""
    check_id(subject, "--subject")
    check_id(site, "--site")
    if presentation not in PRESENTATIONS:
        raise ConfigError(f"--label must be one of {', '.join(PRESENTATIONS)}, got '{presentation}'")
    if "\n" in note or "\r" in note:
        raise ConfigError("--note must be one line")
    return SessionInfo(subject, presentation, site, note)


def read_session(folder: Path) -> SessionInfo:
    """The sidecar of ``folder``; a missing or damaged one is a one-line :class:`DatasetError` naming the file."""
    path = Path(folder) / SESSION_FILE
    if not Path(folder).is_dir():
        raise DatasetError(f"session folder '{folder}' does not exist or is not a folder; give a folder made by "
                           f"edgefas collect")
    if not path.is_file():
        raise DatasetError(f"'{folder}' is not a capture session (no {SESSION_FILE}); make one with edgefas collect")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != SESSION_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {SESSION_FORMAT!r}")
        label, pai = data["label"], data["pai"]
        presentation = LIVE if label == "live" else pai
        if label not in ("live", "spoof") or presentation not in PRESENTATIONS:
            raise ValueError(f"label {label!r} with pai {pai!r}")
        takes = tuple(TakeRecord(**t) for t in data["takes"])
        info = SessionInfo(check_id(data["subject"], "subject"), presentation, check_id(data["site"], "site"),
                           str(data.get("note", "")), takes)
    except (ValueError, KeyError, TypeError, ConfigError) as exc:
        raise DatasetError(f"'{path}' is not a valid session sidecar ({exc}); restore it or collect the session "
                           f"again") from None
    return info


def write_session(folder: Path, info: SessionInfo) -> Path:
    """Write the sidecar atomically (temporary name, then rename): a crash never leaves half a label."""
    path = Path(folder) / SESSION_FILE
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def open_session(folder: Path, wanted: SessionInfo) -> SessionInfo:
    """The session to add a take to: a new folder, or an existing session of the same subject and label.

    Another subject, another presentation, or a non-empty folder that is not a session is a one-line
    :class:`ConfigError`, raised before any camera is opened.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out '{folder}' is a file; give a session folder")
    if not (folder / SESSION_FILE).is_file():
        if folder.is_dir() and any(folder.iterdir()):
            raise ConfigError(f"--out '{folder}' is a non-empty folder without {SESSION_FILE}; give a new folder "
                              f"for the session")
        return wanted
    have = read_session(folder)
    if have.subject != wanted.subject:
        raise ConfigError(f"session '{folder}' holds subject {have.subject}, not {wanted.subject}: one subject per "
                          f"session; give a new --out folder for {wanted.subject}")
    if have.presentation != wanted.presentation:
        raise ConfigError(f"session '{folder}' holds {have.presentation} takes, not {wanted.presentation}: one "
                          f"label per session; give a new --out folder")
    if have.site != wanted.site:
        raise ConfigError(f"session '{folder}' was taken at site {have.site}, not {wanted.site}; give a new --out "
                          f"folder")
    return have
