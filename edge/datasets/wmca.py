"""WMCA (George et al., TIFS 2019) and HQ-WMCA (Heusch et al., TBIOM 2020) face crops with Idiap's protocols.

Layout (docs/datasets.md cites the sources and says what is assumed)::

    ROOT/protocols/<protocol>/{train,dev,eval}/for_real.lst     "<file> <client_id>"
    ROOT/protocols/<protocol>/{train,dev,eval}/for_attack.lst   "<file> <client_id> <attack_type>"
    ROOT/<file>.hdf5 (or .h5)    one video: Bob FrameContainer, groups Frame_<k> with dataset "array"

The lists use Idiap's PAD file-list format (bob.pad.base): ``<file>`` is relative to ROOT without
extension; which list a file is in is its label, so polarity never depends on a 0/1 convention.
``attack_type`` may be a bare name (``fakehead``) or Bob's ``attack/3D/fakehead``; its last part is
the attack name. Idiap's leave-one-out protocols (``LOO_<attack>``) are read from their own folder
when present, else derived from ``grandtest`` exactly as bob.pad.face defines them: the left-out
attack is removed from train and dev, and test keeps only bona fide plus the left-out attack.

Each frame ``array`` is 4 x H x W uint8, a face crop already normalised to 8 bits:
WMCA files (``<client>_<session>_<presenter>_<type>_<pai>``) hold grayscale, depth, infrared,
thermal (the MC-CNN preprocessing), so colour is grayscale and ``color_is_gray`` says so;
HQ-WMCA files (``<site>_<session>_<client>_<presenter>_<type>_<subtype>_<pai>-<hash>``) hold
R, G, B, depth. The type field of the file name is 0 for bona fide and is checked against the list.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.datasets.listfile import ListLine, path_components, read_list, resolve
from edge.datasets.records import RawSample
from edge.datasets.registry import DatasetSpec, check_split
from edge.errors import DatasetError, import_optional

log = logging.getLogger(__name__)

PREFIX = "wmca"

# Bob's high-level group names; our "test" is Bob's "eval".
GROUP_DIRS: dict[str, str] = {"train": "train", "dev": "dev", "test": "eval"}
REAL_LIST = "for_real.lst"
ATTACK_LIST = "for_attack.lst"
GRANDTEST_NAMES = ("grandtest", "grand_test")  # WMCA spelling, HQ-WMCA spelling
HDF5_SUFFIXES = (".hdf5", ".h5")

# Attack names of WMCA (bob.pad.face BATL interface: prints, replay, fakehead, glasses,
# flexiblemask, papermask, rigidmask, makeup) and HQ-WMCA (its LOO protocol names) -> our species.
ATTACK_SPECIES: dict[str, str] = {
    "prints": "print", "print": "print",
    "replay": "replay",
    "fakehead": "mask", "mannequin": "mask", "rigidmask": "mask", "flexiblemask": "mask", "papermask": "mask",
    "glasses": "other", "makeup": "other", "tattoo": "other", "wig": "other",
}

# File-name conventions (bob.db.batl and bob.db.hqwmca documentation) and where their type field is.
WMCA_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)_(\d+)$")
HQWMCA_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)_(\d+)_(\d+)_(\d+)-[0-9A-Za-z]+$")
BONAFIDE_TYPE = 0  # type field value of bona fide files (bob.db.batl: "For bonafide this number is 0")


@dataclass(frozen=True)
class WmcaEntry:
    file: str  # relative to ROOT, without extension
    subject: str
    attack: str  # "" for bona fide, else the attack name (last part of attack_type)
    where: str


@dataclass(frozen=True)
class ChannelLayout:
    name: str
    gray: bool  # colour planes are one grayscale plane


CDIT = ChannelLayout("gray,depth,infrared,thermal", gray=True)
RGBD = ChannelLayout("R,G,B,depth", gray=False)


def attack_name(attack_type: str) -> str:
    """``fakehead`` from ``attack/3D/fakehead``; the dataset's spelling is kept (HQ-WMCA capitalises)."""
    return attack_type.replace("\\", "/").rstrip("/").split("/")[-1]


def species_of(attack: str) -> str:
    return ATTACK_SPECIES.get(attack.lower(), "other")


def layout_of(file_name: str, where: str) -> tuple[ChannelLayout, str]:
    """The channel layout and the type field, from the file-name convention."""
    match = WMCA_NAME.match(file_name)
    if match is not None:
        return CDIT, match.group(4)
    match = HQWMCA_NAME.match(file_name)
    if match is not None:
        return RGBD, match.group(5)
    raise DatasetError(f"{where}: file name {file_name!r} follows neither the WMCA convention "
                       "(client_session_presenter_type_pai) nor HQ-WMCA's "
                       "(site_session_client_presenter_type_subtype_pai-hash), so its channels are unknown")


def read_group(group_dir: Path) -> list[WmcaEntry]:
    """Entries of one protocol group: bona fide from for_real.lst, then attacks from for_attack.lst."""
    entries: list[WmcaEntry] = []
    for list_name, columns in ((REAL_LIST, 2), (ATTACK_LIST, 3)):
        list_path = group_dir / list_name
        if not list_path.is_file():
            raise DatasetError(f"{group_dir} is not a WMCA protocol group: expected {list_path}")
        for line in read_list(list_path):
            entries.append(entry_of(line, list_path, columns))
    return entries


def entry_of(line: ListLine, list_path: Path, columns: int) -> WmcaEntry:
    where = f"{list_path} line {line.number}"
    if len(line.tokens) != columns:
        form = "file client_id" if columns == 2 else "file client_id attack_type"
        raise DatasetError(f"{where} is not '{form}': {' '.join(line.tokens)!r}")
    attack = attack_name(line.tokens[2]) if columns == 3 else ""
    if columns == 3 and not attack:
        raise DatasetError(f"{where} has an empty attack type")
    return WmcaEntry(line.tokens[0], line.tokens[1], attack, where)


def check_attack_known(base: Path, left_out: str, protocol: str) -> None:
    """A leave-one-out of an attack grandtest does not have would silently train on everything."""
    known = {entry.attack.lower() for group in GROUP_DIRS.values() for entry in read_group(base / group)
             if entry.attack}
    if left_out not in known:
        raise DatasetError(f"protocol {protocol} leaves out '{left_out}', which {base.name} does not list; "
                           f"use LOO_<attack> with one of: {', '.join(sorted(known)) or 'none'}")


def protocol_entries(root: Path, protocol: str, split: str) -> tuple[list[WmcaEntry], str]:
    """Entries of ``split`` and a note on where they came from (own lists or derived from grandtest)."""
    protocols = root / "protocols"
    group = GROUP_DIRS[split]
    own = protocols / protocol
    if own.is_dir():
        return read_group(own / group), f"{own.relative_to(root)}/{group}"
    if protocol.startswith("LOO_") and len(protocol) > len("LOO_"):
        left_out = protocol[len("LOO_"):].lower()
        for name in GRANDTEST_NAMES:
            base = protocols / name
            if base.is_dir():
                check_attack_known(base, left_out, protocol)
                entries = read_group(base / group)
                if split == "test":
                    kept = [e for e in entries if not e.attack or e.attack.lower() == left_out]
                else:
                    kept = [e for e in entries if e.attack.lower() != left_out]
                return kept, f"{base.relative_to(root)}/{group} without '{left_out}' (leave-one-out)"
    raise DatasetError(f"{root} has no WMCA protocol '{protocol}': expected {own / group / REAL_LIST}"
                       + (f" or {protocols / GRANDTEST_NAMES[0] / group / REAL_LIST} to derive it from"
                          if protocol.startswith("LOO_") else ""))


def find_file(root: Path, entry: WmcaEntry) -> Path:
    base = resolve(root, entry.file)
    for suffix in HDF5_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{entry.where} names {entry.file} but neither {base.name}.hdf5 nor {base.name}.h5 "
                       f"exists in {base.parent}; check that the dataset was fully extracted")


def frame_names(h5file: object, path: Path) -> list[str]:
    """Frame group names in recorded order: Bob's FrameIndexes when present, else by number."""
    if "FrameIndexes" in h5file:  # type: ignore[operator]
        indexes = h5file["FrameIndexes"]  # type: ignore[index]
        names = []
        for key in sorted(indexes.keys(), key=int):
            value = indexes[key][()]
            names.append(value.decode() if isinstance(value, bytes) else str(value))
        return names
    names = [name for name in h5file.keys() if name.startswith("Frame_")]  # type: ignore[attr-defined]
    if not names:
        raise DatasetError(f"{path} holds no Frame_<k> groups: expected a Bob FrameContainer of face crops "
                           "(raw camera streams must be cropped and aligned first)")
    return sorted(names, key=lambda name: int(name.split("_", 1)[1]))


class WmcaDataset:
    """One split of one WMCA/HQ-WMCA protocol, streamed frame by frame (one HDF5 file open at a time)."""

    def __init__(self, spec: str, root: Path, protocol: str, split: str, entries: list[WmcaEntry],
                 source: str) -> None:
        self.spec = spec
        self.split = split
        self.root = root
        self.protocol = protocol
        self.source = source
        self._entries = entries
        self._files = [find_file(root, entry) for entry in entries]
        self._layouts = [self._check_entry(entry) for entry in entries]
        if any(layout.gray for layout in self._layouts):
            log.warning("wmca: WMCA crops carry grayscale, not colour: colour is the gray plane repeated "
                        "(RawSample.color_is_gray=True)")

    @staticmethod
    def _check_entry(entry: WmcaEntry) -> ChannelLayout:
        name = path_components(entry.file)[-1]
        layout, type_field = layout_of(name, entry.where)
        if (int(type_field) == BONAFIDE_TYPE) != (not entry.attack):
            listed = "bona fide" if not entry.attack else f"attack '{entry.attack}'"
            raise DatasetError(f"{entry.where}: {name} is listed as {listed} but its type field is {type_field} "
                               "(0 = bona fide); the protocol lists do not match the files")
        return layout

    def __len__(self) -> int:
        h5py = import_optional("h5py", "train", "Reading WMCA HDF5 files")
        total = 0
        for path in self._files:
            with h5py.File(path, "r") as h5file:
                total += len(frame_names(h5file, path))
        return total

    def describe(self) -> str:
        attacks = sorted({entry.attack for entry in self._entries if entry.attack})
        lives = sum(1 for entry in self._entries if not entry.attack)
        return (f"wmca root={self.root} protocol={self.protocol} split={self.split} lists={self.source} "
                f"videos={len(self._entries)} live={lives} spoof={len(self._entries) - lives} "
                f"attacks={','.join(attacks) or '-'}")

    def __iter__(self) -> Iterator[RawSample]:
        h5py = import_optional("h5py", "train", "Reading WMCA HDF5 files")
        for entry, path, layout in zip(self._entries, self._files, self._layouts):
            with h5py.File(path, "r") as h5file:
                for name in frame_names(h5file, path):
                    if name not in h5file or "array" not in h5file[name]:
                        raise DatasetError(f"{path} has no dataset {name}/array: expected a Bob FrameContainer")
                    yield self._sample(entry, path, name, np.asarray(h5file[name]["array"][()]), layout)

    def _sample(self, entry: WmcaEntry, path: Path, frame: str, array: np.ndarray,
                layout: ChannelLayout) -> RawSample:
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[0] != 4:
            raise DatasetError(f"{path}:{frame}/array is {array.dtype} {array.shape}; expected 4 x H x W uint8 "
                               f"face crops ({layout.name})")
        if layout.gray:
            color = np.ascontiguousarray(np.repeat(array[0][:, :, None], 3, axis=2))
        else:
            color = np.ascontiguousarray(array[2::-1].transpose(1, 2, 0))  # planar RGB -> interleaved BGR
        depth = np.ascontiguousarray(array[3] if not layout.gray else array[1])
        return RawSample(
            color_bgr=color,
            depth=depth,
            depth_kind="normalised8",
            precropped=True,
            label="spoof" if entry.attack else "live",
            pai=species_of(entry.attack) if entry.attack else "",
            pai_code=entry.attack,
            subject=entry.subject,
            path=f"{path}:{frame}",
            dataset=PREFIX,
            color_is_gray=layout.gray,
        )


def open_wmca(spec: DatasetSpec, split: str | None) -> WmcaDataset:
    """Open WMCA/HQ-WMCA protocol ``#PROTOCOL`` (``grandtest``, ``LOO_fakehead``, ...) at ``split``."""
    protocol = spec.selector
    if "/" in protocol or "\\" in protocol or protocol in ("", ".", ".."):
        raise DatasetError(f"'{spec.text}': '{protocol}' is not a protocol name; use grandtest or LOO_<attack>")
    chosen = check_split(split or "train")
    entries, source = protocol_entries(spec.root, protocol, chosen)
    if not entries:
        raise DatasetError(f"split '{chosen}' of WMCA protocol {protocol} is empty: {source} lists no files")
    return WmcaDataset(spec.text, spec.root, protocol, chosen, entries, source)
