"""A rendered "site": the photo world's held-out people at a door with its own light and camera mode.

``make site-demo`` and the site-loop test need a door without a camera. This module renders one:
the people of the photo library's **test** split (no bundled model trained on them,
:mod:`edge.capture.photo.library`), each presenting live and a few attack species made from their
own photographs, under a light and a camera mode the rendered training worlds never use — a warm
tungsten key light from one side with little fill, and the D435's 848x480 mode. Each presentation is
written as a RealSense recording (``.db3``) through the software device, exactly what
``edgefas record`` would have left at that door, so collection replays it through ``bag:`` and the
same librealsense filters and alignment as a camera.

Every person's session shows that person only: the world's pool is narrowed to their photographs,
so an attack shows their own face (they hold a print of themselves), never a second identity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.capture.photo.library import PhotoLibrary, open_library
from edge.capture.photo.scene import PHOTO_ATTACKS, PhotoClip
from edge.capture.photo.world import PhotoWorld
from edge.capture.software_device import RawView, record_views
from edge.capture.synthetic.rig import SensorRig
from edge.errors import ConfigError

SITE_FILE = "site.json"
SITE_SPLIT = "test"  # the photo library's held-out people
SITE_CAMERA = (848, 480)  # the D435's 16:9 mode; the rendered training sets use 640x480
# The door's light (BGR gains, ambient share, direction, exposure): a warm tungsten key (about 2,700 K:
# blue well below red) from the right with little fill. The photo world draws ambient 0.55-0.8 and gains
# within 0.85-1.15 of white (edge/capture/photo/scene.py), so this light is outside what it trains on.
SITE_LIGHT_BGR = (0.62, 0.86, 1.18)
SITE_AMBIENT = 0.32
SITE_LIGHT_DIR = (0.9, -0.35, -1.0)
SITE_EXPOSURE = 0.8
SITE_NOISE = 0.03
SITE_DISTANCE_M = (0.45, 0.8)  # a door: people stop at arm's length from the camera
DEFAULT_ATTACKS = ("print", "replay", "mask", "silicone")


class SiteWorld(PhotoWorld):
    """The photo world with one person's photographs only, under the site's light."""

    def __init__(self, scenario: str, seed: int, identity: str, library: PhotoLibrary,
                 camera: tuple[int, int] = SITE_CAMERA) -> None:
        rng = np.random.default_rng([seed, 2718])
        super().__init__(scenario, seed, SensorRig.d435(*camera), distance_m=float(rng.uniform(*SITE_DISTANCE_M)),
                         split=SITE_SPLIT, library=library)
        self.pool = tuple(p for p in self.pool if p.identity == identity)
        if not self.pool:
            raise ConfigError(f"'{identity}' is not a person of the photo library's {SITE_SPLIT} split")

    def make_clip(self, scenario: str, clip_seed: int) -> PhotoClip:
        clip = super().make_clip(scenario, clip_seed)
        clip.light_bgr = np.array(SITE_LIGHT_BGR, np.float32)
        clip.ambient = SITE_AMBIENT
        clip.light_dir = np.array(SITE_LIGHT_DIR, np.float32)
        clip.exposure = SITE_EXPOSURE
        clip.white_balance = np.ones(3, np.float32)  # the camera's white balance does not correct the warm light
        clip.noise_sigma = SITE_NOISE
        return clip


@dataclass(frozen=True)
class SiteRecording:
    recording: str  # file name inside the site folder
    subject: str  # the subject id a site operator would give (never the person's name)
    presentation: str  # "live" or an attack species
    frames: int


def subject_ids(identities: Sequence[str]) -> dict[str, str]:
    """Stable ids (s01, s02, ...) in the order of the identities' hashes: names stay out of the data."""
    ordered = sorted(identities, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    return {identity: f"s{k + 1:02d}" for k, identity in enumerate(ordered)}


def render_site(out: Path, frames: int, stride: int = 10, attacks: Sequence[str] = DEFAULT_ATTACKS,
                people: int | None = None, seed: int = 0, library: PhotoLibrary | None = None,
                on_recording: Callable[[SiteRecording], None] | None = None) -> list[SiteRecording]:
    """Record every person x presentation as ``out/<subject>-<presentation>.db3`` and list them in ``site.json``.

    ``frames`` frames per recording, ``stride`` rendered frames apart (every 10th of 30 fps: a third of
    a second, so a short recording still sees the head turn). ``people`` None takes every person of the split.
    """
    bad = [a for a in attacks if a not in PHOTO_ATTACKS]
    if bad:
        raise ConfigError(f"attack '{bad[0]}' is not one of the photo world's: {', '.join(PHOTO_ATTACKS)}")
    if frames < 1 or stride < 1:
        raise ConfigError("frames and stride must be at least 1")
    library = library or open_library()
    identities = sorted({p.identity for p in library.photos_in(SITE_SPLIT)})
    ids = subject_ids(identities)
    chosen = sorted(identities, key=ids.__getitem__)[:people]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    made: list[SiteRecording] = []
    for identity in chosen:
        for k, presentation in enumerate(("live",) + tuple(attacks)):
            world_seed = int.from_bytes(hashlib.sha256(f"{seed}:{identity}:{presentation}".encode()).digest()[:4],
                                        "little")
            world = SiteWorld(presentation, world_seed, identity, library)

            def views(w: SiteWorld = world):
                for i in range(frames):
                    v = w.render(i * stride)
                    yield RawView(v.color_bgr, v.depth_raw, float(v.t_ms))

            name = f"{ids[identity]}-{presentation}.db3"
            record_views(views(), out / name, world.rig)
            item = SiteRecording(name, ids[identity], presentation, frames)
            made.append(item)
            if on_recording is not None:
                on_recording(item)
    (out / SITE_FILE).write_text(json.dumps({
        "camera": list(SITE_CAMERA), "light_bgr": list(SITE_LIGHT_BGR), "ambient": SITE_AMBIENT,
        "split": SITE_SPLIT, "recordings": [vars(r) for r in made]}, indent=2) + "\n")
    return made


def read_site(folder: Path) -> list[SiteRecording]:
    data = json.loads((Path(folder) / SITE_FILE).read_text())
    return [SiteRecording(**r) for r in data["recordings"]]
