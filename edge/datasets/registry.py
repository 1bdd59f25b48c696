"""Dataset spec strings and the one table that maps them to readers.

A dataset is named like a frame source: an explicit prefix, a path, and after ``#`` a selector
whose meaning belongs to the kind (a split for CASIA-SURF, a protocol for CeFA and WMCA):
``casia-surf:/data/CASIA-SURF#dev``, ``cefa:/data/CeFA/phase1#4@1``, ``wmca:/data/WMCA#LOO_fakehead``.
The same table renders ``--help`` text and the error for an unknown prefix, so the two never
disagree (STYLE rule 3).

The split a caller wants (train, dev or test) is passed beside the spec, because a training run
reads two splits of one protocol. CASIA-SURF has no protocols, so its selector *is* the split; a
caller asking for a different split than the spec names gets an error, never a quiet override.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.datasets.records import SPLITS, RawDataset
from edge.errors import DatasetError, DatasetSpecError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetKind:
    prefix: str
    form: str  # how a user writes it
    summary: str
    opener: str  # "module:function" taking (DatasetSpec, split: str | None) -> RawDataset
    needs_selector: bool
    folder: bool = True  # the argument is a folder that must exist (False for e.g. a scenario name)
    count: bool = False  # the argument is a whole number of frames per split (the rendered worlds)
    # "module:function" that checks a selector without reading files (the rendered worlds' protocols), so a
    # mistyped protocol fails with the spec, not after a model loaded; "" when only the files can tell
    check_selector: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed dataset spec: which reader, its argument (usually a folder), and the text after ``#``."""

    kind: str
    argument: str  # the text between ':' and '#'
    selector: str
    text: str  # the spec as the user wrote it, for messages

    @property
    def root(self) -> Path:
        """The argument as a folder (kinds whose argument is a path)."""
        return Path(self.argument).expanduser()


DATASET_KINDS: tuple[DatasetKind, ...] = (
    DatasetKind("casia-surf", "casia-surf:PATH[#SPLIT]",
                "CASIA-SURF (CVPR 2019 challenge layout: train_list.txt, val_private_list.txt, "
                "test_private_list.txt); SPLIT is train, dev or test",
                "edge.datasets.casia_surf:open_casia_surf", False),
    DatasetKind("cefa", "cefa:PATH#PROTOCOL",
                "CASIA-SURF CeFA (challenge layout: PROTOCOL_train.txt, PROTOCOL_dev_ref.txt, ...; "
                "PROTOCOL such as 4@1, 4@2, 4@3)",
                "edge.datasets.cefa:open_cefa", True),
    DatasetKind("wmca", "wmca:PATH#PROTOCOL",
                "WMCA or HQ-WMCA face crops in HDF5 with Idiap protocol lists; PROTOCOL is grandtest "
                "(grand_test) or LOO_<attack>",
                "edge.datasets.wmca:open_wmca", True),
    DatasetKind("synthetic", "synthetic:COUNT[#PROTOCOL]",
                "COUNT frames of the built-in synthetic world per split (subjects disjoint across splits); "
                "PROTOCOL is grandtest or LOO_<print|replay|mask|cutout>",
                "edge.datasets.synthetic:open_synthetic_dataset", False, folder=False, count=True,
                check_selector="edge.datasets.synthetic:check_protocol"),
    DatasetKind("photo", "photo:COUNT[#PROTOCOL]",
                "COUNT frames of the photo world (real people from photographs) per split; people disjoint across "
                "splits; PROTOCOL is grandtest or LOO_<print|replay|mask|cutout|glasses|wrapped|silicone|mannequin>",
                "edge.datasets.photo:open_photo_dataset", False, folder=False, count=True,
                check_selector="edge.datasets.photo:check_protocol"),
    DatasetKind("photomix", "photomix:COUNT[#PROTOCOL]",
                "training only: COUNT frames of the photo world's train people and composite faces made from "
                "them (one person's inner face on another's head), half and half; dev and test are photo:COUNT",
                "edge.datasets.photo:open_photomix_dataset", False, folder=False, count=True,
                check_selector="edge.datasets.photo:check_protocol"),
    DatasetKind("photomorph", "photomorph:COUNT[#PROTOCOL]",
                "training only: COUNT frames of the photo world's train people, each on one of the scanned heads "
                "or of 8 heads morphed between the scans; dev and test are photo:COUNT",
                "edge.datasets.photo:open_photomorph_dataset", False, folder=False, count=True,
                check_selector="edge.datasets.photo:check_protocol"),
    DatasetKind("folder", "folder:PATH", "a labels.csv folder dataset (DESIGN §8); a split column (train, dev, "
                "test) picks each split's rows, without one the whole folder is every split",
                "edge.datasets.folder:open_folder_dataset", False),
)


JOIN = "+"  # joins datasets into one: synthetic:4000+photo:3000 (each part prepared and cached on its own)


def valid_dataset_forms() -> str:
    return ", ".join(kind.form for kind in DATASET_KINDS)


def datasets_help() -> str:
    """Help text for a ``--dataset`` option, rendered from the table."""
    return ("Dataset: " + "; ".join(f"{k.form} = {k.summary}" for k in DATASET_KINDS)
            + f". Join datasets with '{JOIN}' (synthetic:4000{JOIN}photo:3000).")


def find_kind(prefix: str) -> DatasetKind:
    for kind in DATASET_KINDS:
        if kind.prefix == prefix:
            return kind
    raise DatasetSpecError(f"unknown dataset kind '{prefix}'; use one of: {valid_dataset_forms()}")


def _frame_source_only(prefix: str) -> bool:
    """Whether ``prefix`` names a frame source (``bag``, ``realsense``) that no dataset kind shares."""
    from edge.capture.source import SOURCE_KINDS

    return any(k.prefix == prefix for k in SOURCE_KINDS) and all(k.prefix != prefix for k in DATASET_KINDS)


def parse_dataset_spec(spec: str) -> DatasetSpec:
    """Split ``PREFIX:PATH[#SELECTOR]``; unknown prefixes and missing parts list the valid forms.

    A frame source spec (``synthetic:live``, ``bag:x.db3``, ``realsense``) is the grammar of
    ``--source``; given as a dataset it is an error that says what to write instead, never a guess.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetSpecError(f"empty dataset spec; use one of: {valid_dataset_forms()}")
    text = spec.strip()
    prefix, sep, rest = text.partition(":")
    if _frame_source_only(prefix):
        raise DatasetSpecError(f"'{text}' is a frame source, not a labelled dataset with splits; record labelled "
                               f"frames into a folder (labels.csv) and use folder:PATH, or one of: "
                               f"{valid_dataset_forms()}")
    if not sep:
        raise DatasetSpecError(f"dataset spec '{text}' has no kind prefix; use one of: {valid_dataset_forms()}")
    kind = find_kind(prefix)
    path_text, _, selector = rest.partition("#")
    if not path_text:
        raise DatasetSpecError(f"dataset spec '{text}' has nothing after '{prefix}:': {kind.form}")
    if kind.count and not path_text.isdigit():
        if path_text.isalpha():  # a scenario name: the frame source form of the same world
            raise DatasetSpecError(f"'{text}' is a frame source (one scenario), not a dataset; write {kind.form}, "
                               f"e.g. {prefix}:400 (every scenario, labelled, with train/dev/test splits)")
        raise DatasetSpecError(f"dataset spec '{text}': COUNT must be a whole number, as in {prefix}:400 ({kind.form})")
    if kind.count and int(path_text) < 1:
        raise DatasetSpecError(f"dataset spec '{text}': COUNT must be at least 1, as in {prefix}:400 ({kind.form})")
    if kind.needs_selector and not selector:
        raise DatasetSpecError(f"dataset spec '{text}' needs a protocol after '#': {kind.form}")
    if selector and kind.check_selector:
        module_name, _, function_name = kind.check_selector.partition(":")
        try:
            getattr(importlib.import_module(module_name), function_name)(selector)
        except DatasetError as err:
            raise DatasetSpecError(f"dataset spec '{text}': {err}") from None
    return DatasetSpec(kind=kind.prefix, argument=path_text, selector=selector, text=text)


def parse_dataset_specs(spec: str) -> tuple[DatasetSpec, ...]:
    """Every part of a spec joined with ``+``; an empty part is an error, like any bad part."""
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetSpecError(f"empty dataset spec; use one of: {valid_dataset_forms()}")
    parts = [p.strip() for p in spec.split(JOIN)]
    if any(not p for p in parts):
        raise DatasetSpecError(f"dataset spec '{spec}' has an empty part around '{JOIN}'")
    return tuple(parse_dataset_spec(p) for p in parts)


def check_dataset_spec(spec: str, option: str = "--dataset") -> str:
    """A user's spec, checked before any model is opened or frame read: a bad part is one line naming
    ``option``. Returns the spec unchanged."""
    try:
        parse_dataset_specs(spec)
    except DatasetSpecError as err:
        raise DatasetSpecError(f"{option}: {err}") from None
    return spec


def with_protocol(spec: str, protocol: str) -> str:
    """``spec`` with ``#protocol`` appended when a protocol is given and the spec names none (``edgefas eval
    --protocol``); the whole spec, as given, otherwise."""
    return spec + (f"#{protocol}" if protocol and "#" not in spec else "")


def check_split(split: str, option: str = "split") -> str:
    """A split name, often a user's (``edgefas eval --split``): anything but train, dev or test is a
    one-line :class:`DatasetSpecError` naming ``option`` and the valid splits."""
    if split not in SPLITS:
        raise DatasetSpecError(f"{option} must be one of {', '.join(SPLITS)}, got '{split}'")
    return split


def open_dataset(spec: str | DatasetSpec, split: str | None = None) -> RawDataset:
    """Open the dataset named by ``spec`` at ``split`` (default: the spec's own, else ``train``).

    Raises :class:`DatasetError` when the folder does not hold the expected layout (the message
    names the file that was expected) or when the split is empty.
    """
    parsed = spec if isinstance(spec, DatasetSpec) else parse_dataset_spec(spec)
    if split is not None:
        check_split(split)
    kind = find_kind(parsed.kind)
    if kind.folder and not parsed.root.is_dir():
        raise DatasetError(f"dataset folder {parsed.root} does not exist (from '{parsed.text}'); "
                           f"point {kind.form} at the folder that holds the dataset")
    module_name, _, function_name = kind.opener.partition(":")
    opener: Callable[[DatasetSpec, str | None], RawDataset] = getattr(importlib.import_module(module_name),
                                                                      function_name)
    dataset = opener(parsed, split)
    log.info("dataset=%s %s", kind.prefix, dataset.describe())
    return dataset
