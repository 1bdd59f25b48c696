"""The ``FrameSource`` interface and the one table that maps spec strings to implementations.

A source is named by a spec string with an explicit prefix (``synthetic:live``, ``photo:live``,
``bag:PATH``, ``folder:PATH``, ``realsense`` or ``realsense:SERIAL``). The same table renders
``--help`` text and the error for an unknown prefix, so the two never disagree.

The table is also the one answer to "is this a physical camera?" (:attr:`SourceKind.physical`,
:func:`is_physical`): production mode refuses every other kind (DESIGN §7: an injected stream looks
exactly like a recording), and the live path judges a software source in its own stream time.
Production mode travels in :attr:`SourceOptions.production` and is checked in one place,
:func:`check_source`, which every open goes through; a camera then checks its own device (USB link,
firmware, a software device behind a camera spec) in :mod:`edge.capture.realsense`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edge.errors import ConfigError, ProductionError, SourceError
from edge.frames import RGBDFrame

log = logging.getLogger(__name__)


@runtime_checkable
class FrameSource(Protocol):
    """Yields aligned RGB-D frames until exhausted (a recording's end) or closed.

    ``describe()`` is the one line logged at start (what was resolved from the spec). ``spec``
    names the source in the table's form; whether it is a physical camera is the spec's kind's
    answer (:func:`is_physical`), never a flag of its own.
    """

    spec: str

    def __iter__(self) -> Iterator[RGBDFrame]: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class MetersExposure(Protocol):
    """A source whose camera can meter auto-exposure on a region (the live RealSense camera; the
    watchdog passes it on). A face against a bright window or a dark hall is exposed for the room,
    not for the face, unless the camera is told where the face is; the live session tells it."""

    def set_exposure_roi(self, box_xyxy: tuple[float, float, float, float]) -> bool: ...


class ClosesOnExit:
    """Mixin: a source used in a ``with`` block is closed on the way out, also on errors."""

    def close(self) -> None:  # overridden by every source
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class SourceOptions:
    """Options every source understands; a source ignores those that do not apply to it."""

    seed: int = 0
    max_frames: int | None = None  # stop after this many frames (None = until exhausted)
    width: int = 640
    height: int = 480
    fps: int = 30
    timeout_s: float = 2.0  # longest wait for one frame before the source reports a stall
    loop: bool = False  # restart a finite source (recording, folder) at its end
    # refuse every source kind that is not a physical camera (check_source), and a camera whose device
    # is not fit for a door (edge.capture.realsense: software device, USB 2 link, old firmware)
    production: bool = False
    # librealsense sources (realsense, bag): a chain of edge.capture.rs_pipeline.FILTER_CHAINS, by name
    # (a DepthChain when a front end already checked it)
    depth_filters: str = "default"
    # librealsense sources: hand out raw depth and align/filter only the face window later
    # (edge.capture.region_depth, docs/face-first.md); other sources ignore it
    face_first: bool = False


@dataclass(frozen=True)
class SourceKind:
    prefix: str
    form: str  # how a user writes it
    summary: str
    opener: str  # "module:function" taking (argument, SourceOptions) -> FrameSource
    needs_argument: bool
    depth_filters: bool = False  # its depth passes librealsense's filters (SourceOptions.depth_filters applies)
    # frames come from a camera in front of a person, so the stream's clock is the wall clock; every
    # other kind is software (rendered, recorded, read from files): production mode refuses it
    physical: bool = False


SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind("realsense", "realsense[:SERIAL]", "a live Intel RealSense D4xx camera (first found, or by serial)",
               "edge.capture.realsense:open_realsense", False, depth_filters=True, physical=True),
    SourceKind("bag", "bag:PATH", "a RealSense recording (.bag ROS1 or .db3 ROS2), played non-real-time",
               "edge.capture.playback:open_bag", True, depth_filters=True),
    SourceKind("folder", "folder:PATH", "a folder with labels.csv and color/depth image pairs (DESIGN §8)",
               "edge.capture.folder:open_folder", True),
    SourceKind("synthetic", "synthetic:SCENARIO",
               "the built-in rendered RGB-D world; SCENARIO is live, print, replay, mask, cutout, empty or mixed",
               "edge.capture.synthetic:open_synthetic", True),
    SourceKind("photo", "photo:SCENARIO",
               "real people from photographs on real head geometry, rendered (test-split people); SCENARIO is "
               "live, print, replay, mask, cutout, glasses, wrapped, silicone, mannequin, empty or mixed",
               "edge.capture.photo:open_photo", True),
)


def valid_forms() -> str:
    return ", ".join(kind.form for kind in SOURCE_KINDS)


def sources_help() -> str:
    """Help text for a ``--camera``/``--source`` option, rendered from the table."""
    return "Frame source: " + "; ".join(f"{k.form} = {k.summary}" for k in SOURCE_KINDS) + "."


def parse_spec(spec: str) -> tuple[SourceKind, str]:
    """Split a spec into its kind and argument; unknown prefixes list the valid forms."""
    if not isinstance(spec, str) or not spec.strip():
        raise SourceError(f"empty source spec; use one of: {valid_forms()}")
    prefix, sep, argument = spec.strip().partition(":")
    for kind in SOURCE_KINDS:
        if kind.prefix == prefix:
            if kind.needs_argument and not argument:
                raise SourceError(f"source spec '{spec}' needs an argument: {kind.form}")
            return kind, argument
    raise SourceError(f"unknown source spec '{spec}'; use one of: {valid_forms()}")


def check_source_spec(spec: str, option: str = "--source") -> str:
    """A user's spec, checked when the command line is parsed: a malformed one is one line naming
    ``option`` (as :func:`edge.datasets.registry.check_dataset_spec` does for datasets). Returns it unchanged."""
    try:
        parse_spec(spec)
    except SourceError as err:
        raise SourceError(f"{option}: {err}") from None
    return spec


def is_physical(spec: str) -> bool:
    """True only for a spec of a physical camera kind; a spec that does not parse counts as software
    (fail closed: production mode refuses it, and it is judged in stream time)."""
    try:
        return parse_spec(spec)[0].physical
    except SourceError:
        return False


def check_source(spec: str, options: SourceOptions) -> tuple[SourceKind, str]:
    """What :func:`open_source` checks before opening anything: the spec's form, a depth filter
    chain that exists and applies to that kind of source, and, in production mode, a physical kind.
    Callers that open later (a watchdog, a child process) call it first, so a user's mistake is one
    error at start, not a reconnect loop."""
    from edge.capture.rs_pipeline import depth_chain

    kind, argument = parse_spec(spec)
    # a plain name (library code) fails here if unknown, whatever the source; a DepthChain was checked
    # where the user wrote it (--depth-filters, kiosk.toml) and is not checked again
    depth_chain(options.depth_filters)
    if options.depth_filters != "default" and not kind.depth_filters:
        raise ConfigError(f"depth filters '{options.depth_filters}' apply to RealSense cameras and recordings "
                          f"(realsense, bag:PATH), not to '{spec}', whose depth skips librealsense's filters; "
                          f"use default")
    if options.production and not kind.physical:
        raise ProductionError(f"production mode refuses the source '{spec}': a recorded, rendered or software "
                              "stream cannot be told from an injection attack; use a live camera "
                              "(realsense or realsense:SERIAL), or turn production mode off for testing "
                              "([kiosk] production = false)")
    return kind, argument


def open_source(spec: str, options: SourceOptions | None = None) -> FrameSource:
    """Open the source named by ``spec`` and log what was resolved."""
    options = options or SourceOptions()
    kind, argument = check_source(spec, options)
    module_name, _, function_name = kind.opener.partition(":")
    opener: Callable[[str, SourceOptions], FrameSource] = getattr(importlib.import_module(module_name),
                                                                    function_name)
    source = opener(argument, options)
    log.info("source=%s %s", kind.prefix, source.describe())
    if options.depth_filters != "default":
        log.warning("depth filters=%s: faster than the default chain but not validated on real faces "
                    "(docs/benchmarks.md)", options.depth_filters)
    return source
