"""The synthetic RGB-D world as a frame source: deterministic per (scenario, seed, frame index)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

import edge.capture.synthetic.head as headmod
from edge.capture.source import ClosesOnExit, SourceOptions
from edge.capture.synthetic.raycast import Hits, Shaded, Surface, cast, project, shade
from edge.capture.synthetic.rig import SensorRig
from edge.capture.synthetic.scene import ATTACKS, SCENARIOS, Clip, Head, rotation
from edge.capture.synthetic.sensor import DepthUnit, sense_color, sense_depth
from edge.errors import SourceError
from edge.frames import FaceTruth, FrameMeta, RGBDFrame, SceneTruth

MIXED_SEGMENT_FRAMES = 45  # 1.5 s at 30 fps per scene in the `mixed` scenario
MIXED_CHOICES = ("live", "live", "print", "replay", "mask", "cutout", "empty")
# Where bystander heads stand (colour frame, metres) when ``extra_faces`` asks for them: beside and
# behind a primary face at 0.35-1.0 m, each within the D435 colour field of view (|x/z| < 0.52 =
# 320 px / fx 613 px, rig.py) and clear of the others at every resolution of the same field of view.
BYSTANDER_SLOTS_M = ((-0.40, 0.00, 1.10), (0.40, -0.02, 1.10), (-0.28, -0.22, 1.20),
                     (0.28, -0.24, 1.25), (-0.44, 0.20, 1.40), (0.46, 0.20, 1.45))


# Clip seeds the training datasets keep for their splits: the procedural world's train/dev/test
# (train/datasets/synthetic.py, 10/20/30 million) and the photo world's (40/50/60 million).
RESERVED_CLIP_SEEDS = range(10_000_000, 70_000_000)


def outside_split_seeds(seed: int) -> int:
    """A random scene of a `mixed` video never reuses a clip of the training splits (a subject seen there)."""
    return seed + len(RESERVED_CLIP_SEEDS) if seed in RESERVED_CLIP_SEEDS else seed


@dataclass(frozen=True)
class SyntheticViews:
    """One instant seen by both cameras of the rig."""

    color_bgr: np.ndarray  # colour grid, uint8 BGR
    depth_raw: np.ndarray | None  # the depth camera's own grid (unaligned), uint16; None if not rendered
    depth_aligned: np.ndarray  # colour grid, uint16, 0 = no data
    truth: SceneTruth
    t_ms: float


class SyntheticWorld:
    """Renders frames of one scenario. Frame ``i`` at time ``i / fps`` is the same on every call."""

    def __init__(self, scenario: str, seed: int = 0, rig: SensorRig | None = None, fps: int = 30,
                 distance_m: float | None = None, extra_faces: int = 0) -> None:
        if scenario not in SCENARIOS:
            raise SourceError(f"unknown synthetic scenario '{scenario}'; use one of: {', '.join(SCENARIOS)}")
        if not 0 <= extra_faces <= len(BYSTANDER_SLOTS_M):
            raise ValueError(f"extra_faces must be 0..{len(BYSTANDER_SLOTS_M)}, got {extra_faces}")
        self.scenario = scenario
        self.seed = int(seed)
        self.rig = rig or SensorRig.d435()
        self.fps = fps
        self.distance_m = distance_m
        self._clip: tuple[int, Clip] | None = None
        # The static part of the current clip (room and bystanders), cast and shaded once per camera.
        self._static: dict[str, tuple[list[Surface], Hits, Shaded]] = {}
        # Bystanders (for benchmarks with several faces in view): heads of their own subjects, the
        # same in every clip; with extra_faces=0 nothing here touches a random generator.
        self.bystanders = [Head.create(np.random.default_rng([self.seed, 404, k])) for k in range(extra_faces)]

    mixed_choices = MIXED_CHOICES  # what a scene of the `mixed` scenario can be

    def clip_for(self, index: int) -> Clip:
        """The clip frame ``index`` belongs to (a new random scene every segment of ``mixed``)."""
        scenario, key, clip_seed = self.clip_plan(index)
        if self._clip is None or self._clip[0] != key:
            self._clip = (key, self.make_clip(scenario, clip_seed))
            self._static.clear()
        return self._clip[1]

    def clip_plan(self, index: int) -> tuple[str, int, int]:
        """(scenario, segment key, clip seed) of frame ``index``'s clip, without building the clip."""
        if self.scenario == "mixed":
            segment = index // MIXED_SEGMENT_FRAMES
            rng = np.random.default_rng([self.seed, segment, 7])
            scenario = self.mixed_choices[int(rng.integers(len(self.mixed_choices)))]
            return scenario, segment, outside_split_seeds(int(rng.integers(0, 2**31 - 1)))
        return self.scenario, 0, self.seed

    def make_clip(self, scenario: str, clip_seed: int) -> Clip:
        return Clip.create(scenario, clip_seed, self.distance_m)

    def _view(self, clip: Clip, moving: list[Surface], camera: str) -> tuple[Hits, Shaded]:
        """Cast and shade one camera's view: the static part comes from the per-clip cache."""
        intr, origin = (self.rig.color, (0.0, 0.0, 0.0)) if camera == "color" else \
            (self.rig.depth, self.rig.depth_origin_m)
        if camera not in self._static:
            static = clip.background + [head.surface(np.array(BYSTANDER_SLOTS_M[k], np.float32), bystander_turn(k),
                                                     f"bystander{k}", primary=False)
                                        for k, head in enumerate(self.bystanders)]
            hits = cast(static, intr, origin)
            self._static[camera] = (static, hits, shade(hits, static, clip.light_dir, clip.ambient, clip.light_bgr))
        static, static_hits, static_shaded = self._static[camera]
        first = len(static)  # moving surfaces are numbered after the static ones
        hits = cast(moving, intr, origin, behind=static_hits, first_index=first)
        return hits, shade(hits, moving, clip.light_dir, clip.ambient, clip.light_bgr, behind=static_shaded,
                           first_index=first)

    def render(self, index: int, depth_camera: bool = True) -> SyntheticViews:
        clip = self.clip_for(index)
        t_s = index / self.fps
        rng = np.random.default_rng([clip.rng_seed, index, 11])
        moving = clip.moving_surfaces(t_s)
        rig = self.rig
        hits, sh = self._view(clip, moving, "color")
        exposure = clip.exposure * (1.0 + 0.03 * math.sin(0.9 * t_s + clip.rng_seed % 7))
        color = sense_color(sh.radiance, exposure, clip.white_balance, clip.noise_sigma, rng)
        unit = DepthUnit.draw(clip.rng_seed)
        aligned = sense_depth(hits.z, sh.albedo_luma, sh.dropout, rig.color.fx, rig, rng, unit)
        raw = None
        if depth_camera:
            dh, dsh = self._view(clip, moving, "depth")
            raw = sense_depth(dh.z, dsh.albedo_luma, dsh.dropout, rig.depth.fx, rig, rng, unit)
        truth = self._truth(clip, t_s, sh.face_mask)
        return SyntheticViews(color, raw, aligned, truth, t_s * 1000.0)

    def frame(self, index: int) -> RGBDFrame:
        v = self.render(index, depth_camera=False)
        return RGBDFrame(v.color_bgr, v.depth_aligned, self.rig.depth_scale_m, self.rig.color, v.t_ms, index,
                         f"synthetic:{self.scenario}", FrameMeta(index, index, v.t_ms, v.t_ms), v.truth)

    def _truth(self, clip: Clip, t_s: float, face_mask: np.ndarray) -> SceneTruth:
        if clip.person is None:
            return SceneTruth("none", "", clip.subject, clip.scenario, (), face_mask)
        center, rot = clip.pose(t_s)
        if clip.scenario in ("print", "replay"):
            m = clip.medium
            s = clip.victim.shape
            scale = 2 * m.half_w / (m.albedo.shape[1] / 2000.0) if clip.scenario == "print" else \
                2 * m.half_w / (m.albedo.shape[1] / 2000.0)
            pts_local = _face_outline(s) * np.array([scale, scale, 0.0], np.float32)
            lms_local = headmod.landmarks_3d(s) * np.array([scale, scale, 0.0], np.float32)
            pts = pts_local @ m.rotation.T + m.center
            lms = lms_local @ m.rotation.T + m.center
        else:
            s = clip.person.shape if clip.scenario != "mask" else clip.victim.shape
            pts = _face_outline(s, with_relief=True) @ rot.T + center
            lms = headmod.landmarks_3d(s) @ rot.T + center
        px = project(pts.astype(np.float32), self.rig.color, np.zeros(3, np.float32))
        lpx = project(lms.astype(np.float32), self.rig.color, np.zeros(3, np.float32))
        box = (float(px[:, 0].min()), float(px[:, 1].min()), float(px[:, 0].max()), float(px[:, 1].max()))
        pai = clip.scenario if clip.scenario in ATTACKS else ""
        faces = [FaceTruth(box, tuple((float(x), float(y)) for x, y in lpx), float(center[2]), pai)]
        if clip.second is not None:
            sx, sy, sz = clip.second_pose
            p2 = _face_outline(clip.second.shape, with_relief=True) + np.array([sx, sy, sz], np.float32)
            q = project(p2, self.rig.color, np.zeros(3, np.float32))
            l2 = project(headmod.landmarks_3d(clip.second.shape) + np.array([sx, sy, sz], np.float32),
                         self.rig.color, np.zeros(3, np.float32))
            faces.append(FaceTruth((float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()),
                                    float(q[:, 1].max())), tuple((float(x), float(y)) for x, y in l2), sz, ""))
        for k, head in enumerate(self.bystanders):
            at = np.array(BYSTANDER_SLOTS_M[k], np.float32)
            turn = bystander_turn(k)
            origin = np.zeros(3, np.float32)
            q = project(_face_outline(head.shape, with_relief=True) @ turn.T + at, self.rig.color, origin)
            lk = project(headmod.landmarks_3d(head.shape) @ turn.T + at, self.rig.color, origin)
            box = (float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max()))
            faces.append(FaceTruth(box, tuple((float(x), float(y)) for x, y in lk), float(at[2]), ""))
        label = "spoof" if pai else "live"
        return SceneTruth(label, pai, clip.subject, clip.scenario, tuple(faces), face_mask)


def bystander_turn(slot: int) -> np.ndarray:
    """A bystander looks slightly towards the camera axis (yaw of 0.2 rad per metre of offset)."""
    return rotation(-0.2 * BYSTANDER_SLOTS_M[slot][0], 0.0, 0.0)


def _face_outline(shape: headmod.HeadShape, with_relief: bool = False) -> np.ndarray:
    """Points on the face oval from the brows to the chin, in the head frame (N x 3)."""
    a = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    x = shape.face_half_width * 0.95 * np.cos(a)
    y = 0.004 + shape.face_half_height * np.sin(a)
    y = np.clip(y, shape.eye_y - 0.03, None)
    z = np.full_like(x, -shape.head_depth * 0.3 if with_relief else 0.0)
    return np.stack([x, y, z], axis=1).astype(np.float32)


class SyntheticSource(ClosesOnExit):
    """``synthetic:SCENARIO`` as a :class:`FrameSource` (a software kind: production mode refuses it)."""

    def __init__(self, scenario: str, options: SourceOptions) -> None:
        self.spec = f"synthetic:{scenario}"
        self.options = options
        rig = SensorRig.d435(options.width, options.height)
        self.world = SyntheticWorld(scenario, options.seed, rig, options.fps)
        self._closed = False

    def describe(self) -> str:
        c = self.world.rig.color
        return (f"scenario={self.world.scenario} seed={self.world.seed} {c.width}x{c.height}@{self.world.fps} "
                f"depth_scale={self.world.rig.depth_scale_m}")

    def __iter__(self) -> Iterator[RGBDFrame]:
        index = 0
        while not self._closed and (self.options.max_frames is None or index < self.options.max_frames):
            yield self.world.frame(index)
            index += 1

    def close(self) -> None:
        self._closed = True



def open_synthetic(argument: str, options: SourceOptions) -> SyntheticSource:
    return SyntheticSource(argument, options)
