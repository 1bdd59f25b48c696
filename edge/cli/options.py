"""One typer option per concept, spelled the same in every command, with help rendered from the tables.

A command declares ``detector: str = detector_option()``; the flag, its help and its check live
here, once. Help text comes from the table that also decides what is valid: frame sources from
:data:`edge.capture.source.SOURCE_KINDS`, detectors from :data:`edge.face.finder.DETECTORS`, depth
filter chains from :data:`edge.capture.rs_pipeline.FILTER_CHAINS` (the jetson-inference rule: the
table that picks the implementation also renders ``--help``).

Extra names a command had before the names were unified (``live --camera``, ``explain --input``,
``bench --filters``) stay on that command as extra names of the same option, so documented commands
keep working; every command's first name is the shared one.

The factories return ``typer.Option`` objects; nothing here imports a heavy library, and the table
modules it imports (source specs, detectors, depth chains) are the ones the commands imported anyway.
"""

from __future__ import annotations

from typing import Any

import typer

from edge.capture.rs_pipeline import DepthChain, depth_chain, depth_filters_help
from edge.capture.source import SOURCE_KINDS, sources_help
from edge.face.finder import detectors_help
from edge.face.model_store import MODEL_DIR_ENV

SOURCE = "--source"
DATASET = "--dataset"
DETECTOR = "--detector"
MODEL = "--model"
MODEL_DIR = "--model-dir"
DEPTH_FILTERS = "--depth-filters"
THREADS = "--threads"
SEED = "--seed"
FRAMES = "--frames"

MODEL_DIR_HELP = (f"Folder holding the YuNet face-detector model (default: ${MODEL_DIR_ENV}, then "
                  "$XDG_DATA_HOME/edgefas/models, /usr/local/share/edgefas/models, /usr/share/edgefas/models; "
                  "see `edgefas models`).")


def source_option(default: Any = ..., *aliases: str, note: str = "", cameras_only: bool = False) -> Any:
    """``--source SPEC`` (a frame source); ``aliases`` are a command's older names (``--camera``).
    ``cameras_only``: the help lists only the physical kinds (``record`` reads a live camera)."""
    text = sources_help() if not cameras_only else "A live camera: " + "; ".join(
        f"{k.form} = {k.summary}" for k in SOURCE_KINDS if k.physical) + "."
    return typer.Option(default, SOURCE, *aliases, help=text + (f" {note}" if note else ""))


def detector_option(default: str = "auto", note: str = "") -> Any:
    """``--detector NAME``, checked against the detector table when the command runs."""
    return typer.Option(default, DETECTOR, help=detectors_help() + (f" {note}" if note else ""))


def model_option(default: Any = None, *, help: str) -> Any:
    """``--model PATH``: the model a command reads (ONNX, engine or checkpoint: the help says which)."""
    return typer.Option(default, MODEL, help=help)


def model_dir_option() -> Any:
    """``--model-dir DIR``: where the YuNet detector model is."""
    return typer.Option(None, MODEL_DIR, help=MODEL_DIR_HELP)


def _check_depth_filters(names: tuple[str, ...]):
    label = names[0] + "".join(f" (or {n})" for n in names[1:])

    def check(value: str) -> DepthChain:
        return depth_chain(value, label)  # the one check of a chain given on the command line

    return check


def depth_filters_option(*aliases: str) -> Any:
    """``--depth-filters CHAIN``, checked once, when the command line is parsed (see
    :func:`edge.capture.rs_pipeline.depth_chain`); the value is a :class:`DepthChain`."""
    names = (DEPTH_FILTERS, *aliases)
    return typer.Option("default", *names, callback=_check_depth_filters(names), help=depth_filters_help())


def threads_option(help: str) -> Any:
    """``--threads N``: how many threads the command's compute may use (the help says whose)."""
    return typer.Option(None, THREADS, min=1, help=help)


def seed_option(default: int = 0, help: str = "Seed of a synthetic source.", min: int | None = None) -> Any:
    """``--seed N``."""
    return typer.Option(default, SEED, min=min, help=help)


def frames_option(default: Any = None, *aliases: str, help: str) -> Any:
    """``--frames N``: how many frames to read or decide on."""
    return typer.Option(default, FRAMES, *aliases, min=1, help=help)


# --- labelled datasets and caches (the dataset grammar of edge.datasets.registry; docs/datasets-and-caches.md) ---

SPLIT = "--split"
CACHE_DIR = "--cache-dir"


def _check_dataset(flag: str):
    def check(value: str | None) -> str | None:
        from edge.datasets.registry import check_dataset_spec

        return value if value is None else check_dataset_spec(value, flag)  # one line naming the flag

    return check


def dataset_spec_option(default: Any = ..., *, note: str = "", flag: str = DATASET, check: bool = True) -> Any:
    """``--dataset SPEC`` in the dataset grammar: the help is rendered from
    :data:`edge.datasets.registry.DATASET_KINDS` and every ``+`` part is checked when the command line
    is parsed, before a model is opened or a frame read. ``flag`` names another option of the same
    grammar (``train --dev-dataset``). ``check=False`` leaves the check to the command, for one whose
    other options complete the spec (``eval --protocol``); it calls
    :func:`edge.datasets.registry.check_dataset_spec` itself."""
    from rich.markup import escape

    from edge.datasets.registry import datasets_help

    # escaped: typer renders help as rich markup, which would swallow "[#PROTOCOL]" as a style tag
    return typer.Option(default, flag, callback=_check_dataset(flag) if check else None,
                        help=escape(datasets_help() + (f" {note}" if note else "")))


def _check_split(value: str) -> str:
    from edge.datasets.registry import check_split

    return check_split(value, SPLIT)


def split_option(default: str, note: str = "") -> Any:
    """``--split NAME``: train, dev or test (:data:`edge.datasets.records.SPLITS`), checked when parsed."""
    from edge.datasets.records import SPLITS

    return typer.Option(default, SPLIT, callback=_check_split,
                        help=f"Which split of the dataset: {', '.join(SPLITS)}." + (f" {note}" if note else ""))


def cache_dir_option(kind: str) -> Any:
    """``--cache-dir DIR``: one kind of cache (:data:`edge.cache.CACHE_KINDS`); the default is that kind's
    folder under the one cache root, resolved when the command runs (None here)."""
    from edge.cache import CACHE_ENV, CACHE_KINDS, cache_dir

    return typer.Option(None, CACHE_DIR, help=f"Cache of {CACHE_KINDS[kind]} (default: {cache_dir(kind)}; "
                                              f"${CACHE_ENV} moves every edgefas cache).")
