"""CASIA-SURF (Zhang et al., CVPR 2019) in the layout of its CVPR 2019 challenge release.

Layout (docs/datasets.md cites the sources)::

    ROOT/train_list.txt            train  ("Training/real_part/CLKJ_AS0137/real.rssdk/color/31.jpg
    ROOT/val_private_list.txt      dev     Training/real_part/.../depth/31.jpg .../ir/31.jpg 1")
    ROOT/test_private_list.txt     test
    ROOT/Training/{real_part,fake_part}/<subject>/<code>.rssdk/{color,depth,ir}/<n>.jpg
    ROOT/Val/<video>/<frame>-{color,depth,ir}.jpg   (anonymised: no subject, no attack code)

Each line is ``color depth ir label``; label 1 = real (bona fide), 0 = attack. The polarity is
checked against the list itself wherever the paths say ``real_part``/``fake_part`` (the training
list); the anonymised dev/test lists can only rely on the dataset's documented polarity.

Every CASIA-SURF attack is a printed photo with regions cut out (eyes; eyes+nose; eyes+nose+mouth;
flat or bent paper: the six attack codes ``01_e_s`` … ``06_enm_b``), so every spoof is species
``cutout`` and keeps its folder code (when the path shows it) in ``pai_code``.

Images are pre-cropped faces; depth is an 8-bit, already-normalised JPEG (``normalised8``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from edge.datasets.listfile import ListLine, path_components, read_color, read_depth8, read_list, resolve
from edge.datasets.records import RawSample
from edge.datasets.registry import DatasetSpec, check_split
from edge.errors import DatasetError

PREFIX = "casia-surf"

# Labelled list per split, and the unlabelled "public" list the challenge shipped first.
LABELLED_LISTS: dict[str, str] = {"train": "train_list.txt", "dev": "val_private_list.txt",
                                  "test": "test_private_list.txt"}
UNLABELLED_LISTS: dict[str, str] = {"dev": "val_public_list.txt", "test": "test_public_list.txt"}

# The challenge lists mark real faces with 1 (the organisers' bona-fide flag; Idiap's
# bob.pad.face CasiaSurfPadDatabase reads ``is_bonafide == "1"`` from the same files).
DOCUMENTED_LIVE_LABEL = "1"
LABEL_VALUES = ("0", "1")

SPECIES = "cutout"


def attack_code(components: tuple[str, ...]) -> str:
    """``04_en_b`` from ``.../fake_part/<subject>/04_en_b.rssdk/color/1.jpg``; "" when not shown."""
    for part in components:
        if part.endswith(".rssdk") and part != "real.rssdk":
            return part[: -len(".rssdk")]
    return ""


def subject_of(components: tuple[str, ...]) -> str:
    """The folder after ``real_part``/``fake_part`` (e.g. ``CLKJ_AS0137``); "" when anonymised."""
    for index, part in enumerate(components[:-1]):
        if part in ("real_part", "fake_part"):
            return components[index + 1]
    return ""


def read_polarity(lines: list[ListLine], list_path: Path) -> str:
    """The label value that means live, read from the list where its paths say real/fake."""
    real_values: set[str] = set()
    fake_values: set[str] = set()
    for line in lines:
        parts = path_components(line.tokens[0])
        if "real_part" in parts:
            real_values.add(line.tokens[-1])
        elif "fake_part" in parts:
            fake_values.add(line.tokens[-1])
    if len(real_values) > 1 or len(fake_values) > 1 or (real_values & fake_values):
        raise DatasetError(
            f"{list_path} gives real_part samples the labels {sorted(real_values)} and fake_part samples "
            f"{sorted(fake_values)}: the list contradicts itself; re-extract the dataset's lists"
        )
    if real_values:
        return next(iter(real_values))
    if fake_values:
        return "1" if next(iter(fake_values)) == "0" else "0"
    return DOCUMENTED_LIVE_LABEL


class CasiaSurfDataset:
    """One split of CASIA-SURF, streamed frame by frame in list order."""

    def __init__(self, spec: str, root: Path, split: str, list_path: Path, lines: list[ListLine]) -> None:
        self.spec = spec
        self.split = split
        self.root = root
        self.list_path = list_path
        self._lines = lines
        self.live_label = read_polarity(lines, list_path)

    def __len__(self) -> int:
        return len(self._lines)

    def describe(self) -> str:
        lives = sum(1 for line in self._lines if line.tokens[-1] == self.live_label)
        return (f"casia-surf root={self.root} split={self.split} list={self.list_path.name} "
                f"frames={len(self._lines)} live={lives} spoof={len(self._lines) - lives} "
                f"live_label={self.live_label}")

    def __iter__(self) -> Iterator[RawSample]:
        for line in self._lines:
            yield self._sample(line)

    def _sample(self, line: ListLine) -> RawSample:
        where = f"{self.list_path.name} line {line.number}"
        color_rel, depth_rel = line.tokens[0], line.tokens[1]
        live = line.tokens[-1] == self.live_label
        parts = path_components(color_rel)
        return RawSample(
            color_bgr=read_color(resolve(self.root, color_rel), where),
            depth=read_depth8(resolve(self.root, depth_rel), where),
            depth_kind="normalised8",
            precropped=True,
            label="live" if live else "spoof",
            pai="" if live else SPECIES,
            pai_code="" if live else attack_code(parts),
            subject=subject_of(parts),
            path=str(resolve(self.root, color_rel)),
            dataset=PREFIX,
        )


def check_lines(lines: list[ListLine], list_path: Path) -> None:
    """Refuse lines that are not ``color depth ir label`` before any image is read."""
    for line in lines:
        if len(line.tokens) == 3:
            raise DatasetError(f"{list_path} line {line.number} has no label (3 columns): this is an unlabelled "
                               "list; use the *_private_list.txt files that carry labels")
        if len(line.tokens) != 4 or line.tokens[3] not in LABEL_VALUES:
            raise DatasetError(f"{list_path} line {line.number} is not 'color depth ir label' with label 0 or 1: "
                               f"{' '.join(line.tokens)!r}")
        columns = [path_components(token.lower()) for token in line.tokens[:3]]
        mentions_depth = ["depth" in "/".join(parts) for parts in columns]
        if any(mentions_depth) and not mentions_depth[1]:
            raise DatasetError(f"{list_path} line {line.number} has its depth image in another column than the "
                               "second: expected 'color depth ir label'")


def open_casia_surf(spec: DatasetSpec, split: str | None) -> CasiaSurfDataset:
    """Open CASIA-SURF at ``split``; ``#SPLIT`` in the spec fixes the split."""
    chosen = spec.selector or split or "train"
    if spec.selector and spec.selector not in LABELLED_LISTS:
        raise DatasetError(f"'{spec.text}': unknown CASIA-SURF split '{spec.selector}'; use train, dev or test")
    if spec.selector and split is not None and split != spec.selector:
        raise DatasetError(f"'{spec.text}' names split '{spec.selector}' but this step reads '{split}'; "
                           "drop '#SPLIT' from the spec to let the command choose")
    check_split(chosen)
    list_path = spec.root / LABELLED_LISTS[chosen]
    if not list_path.is_file():
        unlabelled = UNLABELLED_LISTS.get(chosen)
        hint = ""
        if unlabelled and (spec.root / unlabelled).is_file():
            hint = f" ({unlabelled} is there but carries no labels)"
        raise DatasetError(f"{spec.root} is not a CASIA-SURF folder for split '{chosen}': expected "
                           f"{list_path.name}{hint}")
    lines = read_list(list_path)
    if not lines:
        raise DatasetError(f"split '{chosen}' of {spec.root} is empty: {list_path.name} lists no samples")
    check_lines(lines, list_path)
    return CasiaSurfDataset(spec.text, spec.root, chosen, list_path, lines)
