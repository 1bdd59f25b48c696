"""The frames a benchmark plays: a rendered scene is recorded once, then played back through pyrealsense2.

Rendering a frame costs far more than capturing one (the ray caster takes ~100 ms at 640x480), so a
``synthetic:SCENARIO`` or ``photo:SCENARIO`` spec (the two rendered worlds) is first written to a ``.db3`` recording through the
software device (raw depth in the depth camera's grid, as a camera would record it) and the
benchmark times *playback*: the read, the depth filters and ``rs.align`` of the real frame path.
The recording is uncompressed (librealsense would store PNGs): a camera delivers raw frames, and
decoding PNGs on the playback thread would bill the bench for work no camera makes.
Recordings are cached by everything that shapes their content, so a second run starts at once.
Other specs (``bag:``, ``realsense``, ``folder:``) are played as given.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.cache import cache_dir as cache_folder
from edge.errors import ConfigError

log = logging.getLogger(__name__)

# Bump when the recorded content changes for the same options (invalidates caches). 2: square-pixel 16:9 modes.
# 3: frames stored uncompressed (the same pixels; playback no longer decodes two PNGs per frame, which cost
# the playback thread more CPU than the whole face-first frame path, docs/face-first-speed.md).
FEED_VERSION = 3
RENDERED_WORLDS = ("synthetic", "photo")  # spec prefixes recorded before playing (edge.capture.source)


@dataclass(frozen=True)
class FeedOptions:
    """How a synthetic spec is recorded; ignored for other specs."""

    seed: int = 8
    width: int = 640
    height: int = 480
    frames: int = 90  # recorded frames; playback loops over them
    extra_faces: int = 0  # bystander heads beside the scenario's face (SyntheticWorld.extra_faces)
    distance_m: float | None = None  # pin the primary face's distance (None = the scenario's own)


def default_cache_dir() -> Path:
    """``bench`` under the one cache root (:func:`edge.cache.cache_root`)."""
    return cache_folder("bench")


def recording_name(scenario: str, options: FeedOptions) -> str:
    distance = "auto" if options.distance_m is None else f"{options.distance_m:g}m"
    return (f"{scenario}-s{options.seed}-{options.width}x{options.height}-n{options.frames}"
            f"-x{options.extra_faces}-d{distance}-v{FEED_VERSION}.db3")


def prepare_feed(spec: str, options: FeedOptions, cache_dir: Path | None = None,
                 progress: Callable[[int, int], None] | None = None) -> str:
    """The spec to play: ``bag:<cached recording>`` for a rendered-world spec, else ``spec`` itself.

    ``progress(done, total)`` is called per recorded frame. A recording is written under a temporary
    name and renamed when complete, so an interrupted run never leaves a truncated cache entry.
    """
    prefix, _, scenario = spec.partition(":")
    if prefix not in RENDERED_WORLDS:
        return spec
    if options.frames < 1:
        raise ConfigError(f"the synthetic recording needs at least 1 frame, got {options.frames}")
    from edge.capture.software_device import RawView, record_views
    from edge.capture.synthetic import SyntheticWorld
    from edge.capture.synthetic.rig import SensorRig

    rig = SensorRig.d435(options.width, options.height)
    if prefix == "photo":
        from edge.capture.photo.world import PhotoWorld

        if options.extra_faces:
            raise ConfigError("--extra-faces applies to synthetic scenes, not to the photo world")
        world = PhotoWorld(scenario, options.seed, rig=rig, distance_m=options.distance_m)
    else:
        world = SyntheticWorld(scenario, options.seed, rig=rig, distance_m=options.distance_m,
                               extra_faces=options.extra_faces)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = recording_name(scenario, options)
    path = folder / (name if prefix == "synthetic" else f"{prefix}-{name}")
    if path.is_file():
        log.info("bench feed: cached recording %s", path)
        return f"bag:{path}"
    folder.mkdir(parents=True, exist_ok=True)
    # the process id in the name: two benches (or two test workers) recording the same feed at once each
    # write their own file, and the one that finishes second replaces an identical recording
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.db3")

    def views() -> Iterator[RawView]:
        for index in range(options.frames):
            rendered = world.render(index)
            yield RawView(rendered.color_bgr, rendered.depth_raw, float(rendered.t_ms))
            if progress is not None:
                progress(index + 1, options.frames)

    try:
        record_views(views(), partial, rig, compress=False)  # a camera hands out raw frames too
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    log.info("bench feed: recorded %d frames of %s to %s", options.frames, spec, path)
    return f"bag:{path}"
