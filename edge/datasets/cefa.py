"""CASIA-SURF CeFA (Liu et al., WACV 2021) in the layout of its ChaLearn 2020 challenge release.

Layout (docs/datasets.md cites the sources)::

    ROOT/4@1_train.txt       frame lines  "train/1_000_1_1_1/profile/0001.jpg 1"
    ROOT/4@1_dev_ref.txt     video lines  "dev/003000 1"          (labels, released after phase 1)
    ROOT/4@1_dev_res.txt     video lines  "dev/003000"            (no labels: submission template)
    ROOT/4@1_test_res.txt    video lines  "test/000001"           (no labels)
    ROOT/train/<Race_ID_Device_Session_PAI>/{profile,depth,ir}/<frame>.jpg
    ROOT/dev/<video>/{profile,depth,ir}/<frame>.jpg               (anonymised folder names)

``profile`` is the colour stream. A list entry is either one ``profile`` image or a video folder,
whose frames are the sorted files of its ``profile`` folder. Depth is the same file name under
``depth``: an 8-bit, already-normalised face crop (``normalised8``).

Label polarity differs between releases of this dataset (the challenge lists mark real faces
with 1, a later repackaging states "live:0/fake:1"), so it is never assumed: it is read from the
protocol's training list, whose folder names end in the PAI code (1 real, 2 cloth print,
3 photo print, 4 screen replay). Dev and test folders are anonymised; their polarity comes from the
same protocol's training list, and their attack species from the protocol's published definition
(protocol 4: train/dev hold screen replays, test holds cloth prints).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.datasets.listfile import ListLine, path_components, read_color, read_depth8, read_list, resolve
from edge.datasets.records import RawSample
from edge.datasets.registry import DatasetSpec, check_split
from edge.errors import DatasetError

PREFIX = "cefa"

PROTOCOL_PATTERN = re.compile(r"^(\d+)@(\d+)$")
# Race_ID_AcqDevice_Session_PAI, e.g. 1_000_1_1_1 (liuajian/CASIA-FAS-Dataset, CASIA_CeFA/readme.md).
VIDEO_NAME = re.compile(r"^(\d)_(\d{3})_(\d)_(\d)_(\d)$")

# PAI field of the video name -> our species; 1 is the bona-fide code.
REAL_PAI = "1"
PAI_SPECIES: dict[str, str] = {"2": "print", "3": "print", "4": "replay"}

# Attack code implied by the published protocol definition for anonymised folders:
# protocol 4.k = train/dev on one ethnicity with Screen (code 4) attacks, test on the other two with
# Cloth (code 2) attacks ("p4.1: AF&AF@Screen-CA/EA@Cloth", CASIA_CeFA/readme.md).
PROTOCOL_PAI: dict[str, dict[str, str]] = {"4": {"train": "4", "dev": "4", "test": "2"}}

# List file name suffixes per split, labelled first. The "_res" lists of the challenge carry no labels.
SPLIT_LISTS: dict[str, tuple[str, ...]] = {"train": ("train",), "dev": ("dev_ref", "dev_res"),
                                           "test": ("test_ref", "test_res")}
LABEL_VALUES = ("0", "1")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class CefaFrame:
    profile: str  # path relative to the root
    label_value: str
    video: str  # folder name of the video
    where: str  # "4@1_train.txt line 12"


def video_folder(parts: tuple[str, ...]) -> str:
    """The folder holding ``profile``/``depth``/``ir`` (the video), from a frame or folder path."""
    if "profile" in parts:
        index = len(parts) - 1 - parts[::-1].index("profile")
        return parts[index - 1] if index > 0 else ""
    return parts[-1] if parts else ""


def depth_path(profile_rel: str) -> str:
    """The depth frame beside a ``profile`` frame: the last ``profile`` component becomes ``depth``."""
    parts = list(path_components(profile_rel))
    index = len(parts) - 1 - parts[::-1].index("profile")
    parts[index] = "depth"
    return "/".join(parts)


def read_polarity(lines: list[ListLine], list_path: Path) -> str:
    """The label value meaning live, from lines whose video name carries the PAI code."""
    live_values: set[str] = set()
    attack_values: set[str] = set()
    for line in lines:
        match = VIDEO_NAME.match(video_folder(path_components(line.tokens[0])))
        if match is None or len(line.tokens) < 2:
            continue
        (live_values if match.group(5) == REAL_PAI else attack_values).add(line.tokens[1])
    if not live_values and not attack_values:
        raise DatasetError(
            f"cannot tell which label means live: no line of {list_path.name} names a video as "
            "Race_ID_Device_Session_PAI (e.g. train/1_000_1_1_1/profile/0001.jpg); use the challenge's "
            "original training list"
        )
    if len(live_values) > 1 or len(attack_values) > 1 or (live_values & attack_values):
        raise DatasetError(
            f"{list_path.name} labels real videos {sorted(live_values)} and attacks {sorted(attack_values)}: "
            "the list contradicts its own folder names; re-extract the dataset's lists"
        )
    if live_values:
        return next(iter(live_values))
    return "1" if next(iter(attack_values)) == "0" else "0"


def find_list(root: Path, protocol: str, split: str) -> tuple[Path, list[ListLine]]:
    """The labelled list of ``split``; an unlabelled one is named in the error, never used."""
    unlabelled: list[str] = []
    for suffix in SPLIT_LISTS[split]:
        path = root / f"{protocol}_{suffix}.txt"
        if not path.is_file():
            continue
        lines = read_list(path)
        if lines and all(len(line.tokens) == 1 for line in lines):
            unlabelled.append(path.name)
            continue
        return path, lines
    expected = " or ".join(f"{protocol}_{suffix}.txt" for suffix in SPLIT_LISTS[split])
    hint = f" ({', '.join(unlabelled)} is there but carries no labels)" if unlabelled else ""
    raise DatasetError(f"{root} is not a CeFA folder for protocol {protocol} split '{split}': expected "
                       f"{expected} with labels{hint}")


def expand_frames(root: Path, lines: list[ListLine], list_path: Path) -> list[CefaFrame]:
    """Frame-level entries: image lines stay as they are, video lines become their profile frames."""
    frames: list[CefaFrame] = []
    for line in lines:
        where = f"{list_path.name} line {line.number}"
        if len(line.tokens) != 2 or line.tokens[1] not in LABEL_VALUES:
            raise DatasetError(f"{where} is not 'path label' with label 0 or 1: {' '.join(line.tokens)!r}")
        rel, label = line.tokens
        parts = path_components(rel)
        if parts and parts[-1].lower().endswith(IMAGE_SUFFIXES):
            if "profile" not in parts:
                raise DatasetError(f"{where} names {rel}, which is not inside a 'profile' folder")
            frames.append(CefaFrame(rel, label, video_folder(parts), where))
            continue
        profile_dir = resolve(root, rel) / "profile"
        if not profile_dir.is_dir():
            raise DatasetError(f"{where} names video {rel} but {profile_dir} does not exist; "
                               "check that the dataset was fully extracted")
        names = sorted(p.name for p in profile_dir.iterdir() if p.name.lower().endswith(IMAGE_SUFFIXES))
        frames.extend(CefaFrame("/".join((*parts, "profile", name)), label, parts[-1], where) for name in names)
    return frames


class CefaDataset:
    """One split of one CeFA protocol, streamed frame by frame in list order."""

    def __init__(self, spec: str, root: Path, protocol: str, split: str, list_path: Path,
                 frames: list[CefaFrame], live_value: str) -> None:
        self.spec = spec
        self.split = split
        self.root = root
        self.protocol = protocol
        self.list_path = list_path
        self.live_value = live_value
        self._frames = frames
        major = PROTOCOL_PATTERN.match(protocol).group(1)  # type: ignore[union-attr]  # validated by the opener
        self._implied_pai = PROTOCOL_PAI.get(major, {}).get(split, "")

    def __len__(self) -> int:
        return len(self._frames)

    def describe(self) -> str:
        lives = sum(1 for frame in self._frames if frame.label_value == self.live_value)
        return (f"cefa root={self.root} protocol={self.protocol} split={self.split} list={self.list_path.name} "
                f"frames={len(self._frames)} live={lives} spoof={len(self._frames) - lives} "
                f"live_label={self.live_value}")

    def __iter__(self) -> Iterator[RawSample]:
        for frame in self._frames:
            yield self._sample(frame)

    def _truth(self, frame: CefaFrame, live: bool) -> tuple[str, str, str]:
        """(species, original PAI code, subject); a named video's PAI code must agree with its label."""
        match = VIDEO_NAME.match(frame.video)
        if match is None:  # anonymised dev/test folder: species from the protocol definition
            return ("" if live else PAI_SPECIES.get(self._implied_pai, "other")), "", ""
        race, ident, _device, _session, pai = match.groups()
        if live != (pai == REAL_PAI):
            said = "real (PAI 1)" if pai == REAL_PAI else f"attack code {pai}"
            raise DatasetError(f"{frame.where}: video {frame.video} is labelled {'live' if live else 'spoof'} but "
                               f"its name says {said}; the list contradicts its folder names")
        if live:
            return "", "", f"{race}_{ident}"
        return PAI_SPECIES.get(pai, "other"), pai, f"{race}_{ident}"

    def _sample(self, frame: CefaFrame) -> RawSample:
        live = frame.label_value == self.live_value
        species, code, subject = self._truth(frame, live)
        return RawSample(
            color_bgr=read_color(resolve(self.root, frame.profile), frame.where),
            depth=read_depth8(resolve(self.root, depth_path(frame.profile)), frame.where),
            depth_kind="normalised8",
            precropped=True,
            label="live" if live else "spoof",
            pai=species,
            pai_code=code,
            subject=subject,
            path=str(resolve(self.root, frame.profile)),
            dataset=PREFIX,
        )


def open_cefa(spec: DatasetSpec, split: str | None) -> CefaDataset:
    """Open CeFA protocol ``#PROTOCOL`` (e.g. ``4@1``) at ``split`` (default train)."""
    protocol = spec.selector
    if PROTOCOL_PATTERN.match(protocol) is None:
        raise DatasetError(f"'{spec.text}': CeFA protocol must look like 4@1 (the prefix of its list files "
                           f"such as 4@1_train.txt), got '{protocol}'")
    chosen = check_split(split or "train")
    train_list = spec.root / f"{protocol}_train.txt"
    if not train_list.is_file():
        raise DatasetError(f"{spec.root} is not a CeFA folder for protocol {protocol}: expected {train_list.name} "
                           "(also needed for the dev and test splits: it tells which label means live)")
    train_lines = read_list(train_list)
    list_path, lines = (train_list, train_lines) if chosen == "train" else find_list(spec.root, protocol, chosen)
    if not lines:
        raise DatasetError(f"split '{chosen}' of CeFA protocol {protocol} is empty: {list_path.name} lists no samples")
    live_value = read_polarity(train_lines, train_list)
    frames = expand_frames(spec.root, lines, list_path)
    if not frames:
        raise DatasetError(f"split '{chosen}' of CeFA protocol {protocol} is empty: the videos listed in "
                           f"{list_path.name} hold no profile frames")
    return CefaDataset(spec.text, spec.root, protocol, chosen, list_path, frames, live_value)
