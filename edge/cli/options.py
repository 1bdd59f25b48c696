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

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from edge.capture.rs_pipeline import DepthChain, depth_chain, depth_filters_help
from edge.capture.source import SOURCE_KINDS, check_source_spec, sources_help
from edge.errors import check_choice
from edge.face.finder import detectors_help
from edge.face.model_store import MODEL_DIR_ENV

SOURCE = "--source"
DATASET = "--dataset"
DETECTOR = "--detector"
MODEL = "--model"
MODEL_DIR = "--model-dir"
DEPTH_FILTERS = "--depth-filters"
ROI = "--roi"
THREADS = "--threads"
SEED = "--seed"
FRAMES = "--frames"

MODEL_DIR_HELP = (f"Folder holding the YuNet face-detector model (default: ${MODEL_DIR_ENV}, then "
                  "$XDG_DATA_HOME/edgefas/models, /usr/local/share/edgefas/models, /usr/share/edgefas/models; "
                  "see `edgefas models`).")


def source_spec_check(label: str) -> Callable[[str | None], str | None]:
    """A callback that checks a source spec's form when the command line is parsed (one line naming
    ``label``), before a model is opened; whether the source opens is the source's own check."""

    def check(value: str | None) -> str | None:
        return value if value is None else check_source_spec(value, label)

    return check


def source_option(default: Any = ..., *aliases: str, note: str = "", cameras_only: bool = False) -> Any:
    """``--source SPEC`` (a frame source); ``aliases`` are a command's older names (``--camera``).
    ``cameras_only``: the help lists only the physical kinds (``record`` reads a live camera)."""
    text = sources_help() if not cameras_only else "A live camera: " + "; ".join(
        f"{k.form} = {k.summary}" for k in SOURCE_KINDS if k.physical) + "."
    return typer.Option(default, SOURCE, *aliases, callback=source_spec_check(SOURCE),
                        help=text + (f" {note}" if note else ""))


def detector_option(default: str = "auto", note: str = "") -> Any:
    """``--detector NAME``, checked against the detector table when the command runs."""
    return typer.Option(default, DETECTOR, help=detectors_help() + (f" {note}" if note else ""))


def model_option(default: Any = None, *, help: str) -> Any:
    """``--model PATH``: the model a command reads (ONNX, engine or checkpoint: the help says which)."""
    return typer.Option(default, MODEL, help=help)


def model_dir_option() -> Any:
    """``--model-dir DIR``: where the YuNet detector model is."""
    return typer.Option(None, MODEL_DIR, exists=True, file_okay=False, help=MODEL_DIR_HELP)


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


ROI_CHOICES = ("on", "off")
ROI_HELP = ("on = face first (docs/face-first.md): detect in a window around the tracked face, with a full scan "
            "at least every 200 ms and at once on a lost face or motion elsewhere, and filter/align depth only "
            "for the face crop; off = detection and depth filters/align on the whole frame, every frame.")


def _check_roi(value: str) -> str:
    return check_choice(value, ROI_CHOICES, ROI)


def roi_option() -> Any:
    """``--roi on|off``: the face-first path (on, the default) or the whole-frame path."""
    return typer.Option("on", ROI, callback=_check_roi, help=ROI_HELP)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, which taskset or a container narrows)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_option(help: str) -> Any:
    """``--threads N``: how many threads the command's compute may use (the help says whose), at most
    one per usable core: in a compute pool more threads only queue behind each other (docs/benchmarks.md),
    and an absurd count is a crash, not a slow run (100000 made ONNX Runtime segfault; 1024 spun for a
    minute on one frame of a 2-core machine)."""
    return typer.Option(None, THREADS, min=1, max=usable_cores(), help=help)


def seed_option(default: int = 0, help: str = "Seed of a synthetic source.", min: int = 0) -> Any:
    """``--seed N``, 0 or more: numpy's generators refuse a negative seed."""
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

    return typer.Option(None, CACHE_DIR, file_okay=False,
                        help=f"Cache of {CACHE_KINDS[kind]} (default: {cache_dir(kind)}; "
                             f"${CACHE_ENV} moves every edgefas cache).")


# --- values that click's types let through -------------------------------------------------------


def finite(above: float | None = None) -> Callable[[float | None], float | None]:
    """A callback for a float option: refuse nan and inf (click's float type and its ``min``/``max``
    let both through), and, with ``above``, anything not greater than it (an open bound, which
    ``min=`` cannot say). Closed bounds stay ``min=``/``max=`` on the option, shown in its help."""

    def check(value: float | None) -> float | None:
        if value is None:
            return value
        if not math.isfinite(value):
            raise typer.BadParameter(f"{value} is not a finite number")
        if above is not None and not value > above:
            raise typer.BadParameter(f"{value:g} must be greater than {above:g}")
        return value

    return check


def output_file(value: Path | None) -> Path | None:
    """A callback for an option naming a file the command writes at its end: a folder, or a file in a
    folder that does not exist, is refused when the command line is parsed, not after the work; so is
    '-' (before, a file named '-' was written where a reader would expect standard output)."""
    if value is None:
        return value
    if str(value) == "-":
        raise typer.BadParameter("'-' (standard output) is not supported here; give the path of a file to write")
    if value.is_dir():
        raise typer.BadParameter(f"'{value}' is a folder; give the path of a file to write")
    if not value.parent.is_dir():
        raise typer.BadParameter(f"folder '{value.parent}' does not exist; create it first or choose another path")
    return value


def json_output(value: Path | None) -> Path | None:
    """:func:`output_file` for a JSON report, where '-' means standard output (as `bench --json -`)."""
    return value if value is not None and str(value) == "-" else output_file(value)
