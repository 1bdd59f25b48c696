"""The photo world as a frame source: ``photo:SCENARIO``, deterministic per (scenario, seed, frame index).

It shares the procedural world's room, light, ray caster and D435-like sensor (it is a
:class:`~edge.capture.synthetic.world.SyntheticWorld` whose clips are :class:`PhotoClip` s), so the
two worlds differ only in who is in front of the camera. People come from one split of the photo
library; the ``photo:SCENARIO`` source shows the **test** split, people no bundled model trained on.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from edge.capture.photo.library import PhotoLibrary, open_library
from edge.capture.photo.lift import HEADS, PersonCard, card_for, check_head
from edge.capture.photo.scene import PHOTO_ATTACKS, PHOTO_SCENARIOS, PhotoClip
from edge.capture.source import SourceOptions
from edge.capture.synthetic.raycast import project
from edge.capture.synthetic.rig import SensorRig
from edge.capture.synthetic.world import SyntheticSource, SyntheticWorld
from edge.errors import SourceError
from edge.frames import FaceTruth, FrameMeta, RGBDFrame, SceneTruth

MIXED_CHOICES = ("live", "live", "live") + PHOTO_ATTACKS + ("empty",)
SOURCE_SPLIT = "test"


@functools.lru_cache(maxsize=1)
def _segmenter(root: str):
    from edge.capture.photo.segmenter import PersonSegmenter

    return PersonSegmenter(extra_dirs=(Path(root) / "models",))


@functools.lru_cache(maxsize=80)  # a card is 10-20 MB; a split has a few dozen photos, twice that with composites
def cached_card(photo: str, root: str, donor: str = "", head: str = "mediapipe") -> PersonCard:
    """The lifted card of one photo (of a composite when ``donor`` names a second photo) on the head
    shape ``head``, shared by every world of this process."""
    yunet = Path(root) / "models" / "face_detection_yunet.onnx"
    if not yunet.is_file():
        from edge.face.model_store import find_yunet

        yunet = find_yunet()
        if yunet is None:
            raise SourceError("the photo world needs YuNet to place its meshes on the photos; see `edgefas models`")
    return card_for(Path(photo), Path(root) / "meshes", yunet, _segmenter(root), Path(donor) if donor else None,
                    head)


class PhotoWorld(SyntheticWorld):
    """Renders frames of one photo-world scenario with the people of one split."""

    mixed_choices = MIXED_CHOICES

    def __init__(self, scenario: str, seed: int = 0, rig: SensorRig | None = None, fps: int = 30,
                 distance_m: float | None = None, split: str = SOURCE_SPLIT,
                 library: PhotoLibrary | None = None, composites: bool = False, heads: tuple[str, ...] = HEADS) -> None:
        if scenario not in PHOTO_SCENARIOS:
            raise SourceError(f"unknown photo scenario '{scenario}'; use one of: {', '.join(PHOTO_SCENARIOS)}")
        self.scenario = scenario
        self.seed = int(seed)
        self.rig = rig or SensorRig.d435()
        self.fps = fps
        self.distance_m = distance_m
        self.split = split
        self.library = library or open_library()
        # with composites, half the people drawn are composite faces of this split's people
        self.pool = self.library.photos_in(split) + (self.library.composites_in(split) if composites else ())
        if not heads:
            raise SourceError(f"a photo world needs at least one head shape; use some of: {', '.join(HEADS)}")
        self.heads = tuple(check_head(h) for h in heads)
        self._clip = None
        self._static = {}
        self.bystanders = []

    def card(self, index: int, head: str = "mediapipe") -> PersonCard:
        photo = self.pool[index]
        return cached_card(str(photo.path), str(self.library.root), str(photo.donor) if photo.donor else "", head)

    def make_clip(self, scenario: str, clip_seed: int) -> PhotoClip:
        """Who is in the scene: a wearer (the live person, or the attacker) and, for an attack, a victim
        of another identity from the same split when the split has one."""
        rng = np.random.default_rng([clip_seed, 909])
        wearer_i = int(rng.integers(len(self.pool)))
        others = [i for i, p in enumerate(self.pool) if p.identity != self.pool[wearer_i].identity]
        victim_i = int(rng.choice(others)) if others and rng.random() < 0.8 else int(rng.integers(len(self.pool)))
        # each person's head shape, drawn after the people so a clip keeps its people across world versions
        wearer_head, victim_head = (self.heads[int(i)] for i in rng.integers(len(self.heads), size=2))
        wearer = self.card(wearer_i, wearer_head)
        if scenario in ("live", "empty"):
            return PhotoClip.create(scenario, clip_seed, wearer, None, self.pool[wearer_i].identity, self.distance_m)
        shows_victim = scenario not in ("glasses", "mannequin")
        subject = self.pool[victim_i if shows_victim else wearer_i].identity
        return PhotoClip.create(scenario, clip_seed, wearer, self.card(victim_i, victim_head), subject,
                                self.distance_m)

    def frame(self, index: int) -> RGBDFrame:
        v = self.render(index, depth_camera=False)
        return RGBDFrame(v.color_bgr, v.depth_aligned, self.rig.depth_scale_m, self.rig.color, v.t_ms, index,
                         f"photo:{self.scenario}", FrameMeta(index, index, v.t_ms, v.t_ms), v.truth)

    def _truth(self, clip: PhotoClip, t_s: float, face_mask: np.ndarray) -> SceneTruth:
        placed = clip.shown_face_camera(t_s)
        if placed is None:
            return SceneTruth("none", "", clip.subject, clip.scenario, (), face_mask)
        outline, lms = placed
        origin = np.zeros(3, np.float32)
        px = project(outline.astype(np.float32), self.rig.color, origin)
        lpx = project(lms.astype(np.float32), self.rig.color, origin)
        box = (float(px[:, 0].min()), float(px[:, 1].min()), float(px[:, 0].max()), float(px[:, 1].max()))
        pai = clip.scenario if clip.scenario in PHOTO_ATTACKS else ""
        center, _ = clip.pose(t_s)
        face = FaceTruth(box, tuple((float(x), float(y)) for x, y in lpx), float(center[2]), pai)
        return SceneTruth("spoof" if pai else "live", pai, clip.subject, clip.scenario, (face,), face_mask)


class PhotoSource(SyntheticSource):
    """``photo:SCENARIO`` as a :class:`FrameSource` (a software kind: production mode refuses it)."""

    def __init__(self, scenario: str, options: SourceOptions) -> None:
        self.spec = f"photo:{scenario}"
        self.options = options
        self.world = PhotoWorld(scenario, options.seed, SensorRig.d435(options.width, options.height), options.fps)
        self._closed = False

    def describe(self) -> str:
        return f"{super().describe()} split={self.world.split} people={len({p.identity for p in self.world.pool})}"


def open_photo(argument: str, options: SourceOptions) -> PhotoSource:
    return PhotoSource(argument, options)
