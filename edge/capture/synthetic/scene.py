"""Scenes of the synthetic world: a live person or an attack, in a cluttered room, over time.

A :class:`Clip` is everything random about one scene (who, which attack, where, how it moves,
lighting), drawn once from a seed; :meth:`Clip.surfaces` gives the scene at time ``t``. Attack
media show a *photograph* of a face that the same renderer makes, so a print or a screen shows
exactly the kind of face the live scenes show, only on the wrong surface.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

import edge.capture.synthetic.head as headmod
from edge.capture.synthetic.raycast import (
    MATERIAL_BACKGROUND, MATERIAL_CLOTH, MATERIAL_CLUTTER, MATERIAL_MASK, MATERIAL_PAPER, MATERIAL_SCREEN,
    MATERIAL_SKIN, Surface, cast, shade,
)
from edge.frames import Intrinsics

ATTACKS = ("print", "replay", "mask", "cutout")
SCENARIOS = ("live",) + ATTACKS + ("empty", "mixed")


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Local-to-camera rotation: yaw about y, then pitch about x, then roll about z (radians)."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return (ry @ rx @ rz).astype(np.float32)


@dataclass
class Head:
    """A subject's head: shape, grids and the surfaces built from them (cached per subject)."""

    shape: headmod.HeadShape
    height: np.ndarray
    albedo: np.ndarray
    domain: np.ndarray
    inner: np.ndarray
    face_domain: np.ndarray

    @staticmethod
    def create(rng: np.random.Generator) -> Head:
        shape = headmod.HeadShape.random(rng)
        x, y = headmod.texel_grid()
        domain = (headmod.head_outline(shape, x, y) < 1.0).astype(np.float32)
        face_domain = (headmod.face_oval(shape, x, y) < 1.0).astype(np.float32)
        return Head(shape=shape, height=headmod.height_grid(shape), albedo=headmod.albedo_texture(shape, rng),
                    domain=domain, inner=headmod.inner_face_region(shape, x, y) & (domain > 0.5),
                    face_domain=face_domain)

    def surface(self, center: np.ndarray, rot: np.ndarray, name: str = "head", primary: bool = True) -> Surface:
        """The head as a surface; only the primary face marks its pixels in the truth face mask."""
        return Surface(name, center, rot, headmod.HALF_W, headmod.HALF_H, self.albedo, MATERIAL_SKIN,
                       height=self.height, domain=self.domain, face_region=self.inner if primary else None,
                       specular=0.08, shininess=12.0, _normals=self.normals)

    @functools.cached_property
    def normals(self) -> np.ndarray:
        """Local-frame normals of the height grid: the same in every pose, so computed once per head."""
        return Surface("head", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), headmod.HALF_W,
                       headmod.HALF_H, self.albedo, MATERIAL_SKIN, height=self.height).normals()


def _texture(rng: np.random.Generator, w: int, h: int, kind: str) -> np.ndarray:
    """Procedural clutter: walls, posters, shelves, cloth."""
    base = rng.uniform(0.15, 0.85, 3).astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    if kind == "stripes":
        period = rng.uniform(6, 30)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        band = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0)[..., None]
        img = np.where(band, img, rng.uniform(0.1, 0.9, 3).astype(np.float32))
    elif kind == "blocks":
        for _ in range(int(rng.integers(4, 12))):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            x1, y1 = x0 + int(rng.integers(w // 10, w // 2)), y0 + int(rng.integers(h // 10, h // 2))
            img[y0:y1, x0:x1] = rng.uniform(0.05, 0.95, 3)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
    return np.clip(img * (1 + 0.06 * noise[..., None]), 0, 1).astype(np.float32)


def _flat(name: str, center, rot, half_w, half_h, albedo, material, **kw) -> Surface:
    kw.setdefault("specular", 0.0)  # matte room surfaces: no highlight to compute
    return Surface(name, np.asarray(center, np.float32), rot, half_w, half_h, albedo, material, **kw)


def photograph(head: Head, rng: np.random.Generator, px_per_m: float = 2000.0) -> tuple[np.ndarray, np.ndarray]:
    """A frontal portrait of ``head`` at life size: (BGR float image, inner-face mask).

    Rendered with the same ray caster, at 0.5 m with a focal length chosen so one image pixel is
    ``1 / px_per_m`` metres on the subject's face plane: a print of it is life-size.
    """
    w, h = int(0.20 * px_per_m), int(0.26 * px_per_m)
    dist = 0.6
    cam = Intrinsics(w, h, px_per_m * dist, px_per_m * dist, w / 2, h / 2 - 0.01 * px_per_m)
    wall = _flat("backdrop", (0, 0, dist + 0.5), rotation(0, 0, 0), 1.0, 1.0,
                 _texture(rng, 64, 64, "plain"), MATERIAL_BACKGROUND)
    surfaces = [head.surface(np.array([0, 0, dist], np.float32), rotation(rng.uniform(-0.1, 0.1), 0, 0)), wall]
    hits = cast(surfaces, cam, (0.0, 0.0, 0.0))
    light = np.array([rng.uniform(-0.4, 0.4), -0.5, -1.0], np.float32)
    sh = shade(hits, surfaces, light, 0.45, np.ones(3, np.float32))
    return np.clip(sh.radiance, 0, 1), sh.face_mask


def halftone(img: np.ndarray, pitch_px: float, rng: np.random.Generator) -> np.ndarray:
    """Printer halftone: ink dots on a rotated grid whose size follows the local darkness."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0.2, 0.6)
    u = (xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / pitch_px
    v = (-xx * math.sin(a) + yy * math.cos(a)) * 2 * math.pi / pitch_px
    dots = 0.5 + 0.25 * (np.cos(u) + np.cos(v))  # in [0, 1]
    darkness = 1.0 - img.mean(axis=2, keepdims=True)
    ink = (dots[..., None] < darkness).astype(np.float32)
    return img * (1.0 - 0.18 * ink) + 0.05 * (1 - ink) * (1 - img)


def head_pose(motion: np.ndarray, offset_xy: tuple[float, float], distance_m: float,
              t_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and rotation of a head that turns and sways: ``motion`` holds yaw/pitch/roll amplitudes,
    their frequencies (Hz), six phases and three sway amplitudes (m), as :meth:`Clip.create` draws them."""
    m = motion
    ang = [m[i] * math.sin(2 * math.pi * m[3 + i] * t_s + m[6 + i]) for i in range(3)]
    sway = [m[12 + i] * math.sin(2 * math.pi * m[3 + i] * 0.7 * t_s + m[9 + i]) for i in range(3)]
    center = np.array([offset_xy[0] + sway[0], offset_xy[1] + sway[1], distance_m + sway[2]], np.float32)
    return center, rotation(ang[0], ang[1], ang[2])


@dataclass
class Clip:
    """All random choices of one scene; :meth:`surfaces` places them at time ``t_s``."""

    scenario: str
    subject: int
    rng_seed: int
    distance_m: float
    offset_xy: tuple[float, float]
    motion: np.ndarray  # amplitudes/frequencies/phases of head motion
    light_dir: np.ndarray
    ambient: float
    light_bgr: np.ndarray
    exposure: float
    white_balance: np.ndarray
    noise_sigma: float
    person: Head | None
    victim: Head | None
    second: Head | None
    second_pose: tuple[float, float, float]
    background: list[Surface]
    medium: Surface | None  # the attack instrument (paper, screen, mask)
    medium_offset: np.ndarray  # instrument position relative to the head centre (head frame)
    torso_albedo: np.ndarray

    @staticmethod
    def create(scenario: str, seed: int, distance_m: float | None = None) -> Clip:
        """Draw a scene; ``distance_m`` pins the face's distance (everything else stays seeded)."""
        if scenario not in SCENARIOS or scenario == "mixed":
            raise ValueError(f"Clip.create needs one of {SCENARIOS[:-1]}, got {scenario!r}")
        rng = np.random.default_rng([seed, SCENARIOS.index(scenario)])
        distance = float(rng.uniform(0.35, 1.0))
        if distance_m is not None:
            distance = float(distance_m)
        motion = np.concatenate([rng.uniform(0.03, 0.22, 3) * np.array([1.0, 0.5, 0.3]),  # yaw/pitch/roll amp
                                 rng.uniform(0.1, 0.4, 3),  # their frequencies (Hz)
                                 rng.uniform(0, 2 * np.pi, 6),  # phases
                                 rng.uniform(0.005, 0.02, 3)])  # sway amplitudes x, y, z (m)
        light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.9, 0.1), -1.0], np.float32)
        background = _room(rng)
        person = Head.create(np.random.default_rng([seed, 101])) if scenario != "empty" else None
        victim = Head.create(np.random.default_rng([seed, 202])) if scenario in ATTACKS else None
        second = None
        if scenario != "empty" and rng.random() < 0.08:
            second = Head.create(np.random.default_rng([seed, 303]))
        side = 1.0 if rng.random() < 0.5 else -1.0
        clip = Clip(
            scenario=scenario, subject=int(seed), rng_seed=int(seed), distance_m=distance,
            offset_xy=(float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.04, 0.05))),
            motion=motion, light_dir=light, ambient=float(rng.uniform(0.3, 0.5)),
            light_bgr=np.clip(rng.normal(1.0, 0.06, 3), 0.85, 1.15).astype(np.float32),
            exposure=float(rng.uniform(0.8, 1.2)),
            white_balance=np.clip(rng.normal(1.0, 0.05, 3), 0.9, 1.1).astype(np.float32),
            noise_sigma=float(rng.uniform(0.008, 0.025)), person=person, victim=victim, second=second,
            second_pose=(side * float(rng.uniform(0.25, 0.4)), float(rng.uniform(-0.05, 0.05)),
                         float(min(distance + rng.uniform(0.3, 0.7), 1.6))),
            background=background, medium=None, medium_offset=np.zeros(3, np.float32),
            torso_albedo=_texture(rng, 80, 100, "stripes" if rng.random() < 0.5 else "plain"),
        )
        if scenario in ATTACKS:
            clip.medium, clip.medium_offset = _instrument(scenario, clip, rng)
        return clip

    def pose(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Head centre (colour frame, metres) and rotation at time ``t_s``."""
        return head_pose(self.motion, self.offset_xy, self.distance_m, t_s)

    def surfaces(self, t_s: float) -> list[Surface]:
        """Everything in view at ``t_s``: the moving surfaces, then the static room."""
        return self.moving_surfaces(t_s) + self.background

    def moving_surfaces(self, t_s: float) -> list[Surface]:
        """The people and instruments at ``t_s`` (the room, :attr:`background`, never moves)."""
        out: list[Surface] = []
        center, rot = self.pose(t_s)
        if self.person is not None:
            if self.scenario in ("print", "replay"):
                # the attacker stands behind the instrument; only the instrument moves with the hand
                inst_center = center + self.medium_offset
                self.medium.center = inst_center
                self.medium.rotation = rot
                out.append(self.medium)
                hidden_center = center + np.array([0.0, 0.0, 0.10], np.float32)
                out.append(self.person.surface(hidden_center, rotation(0, 0, 0), "attacker", primary=False))
                out.append(_torso(hidden_center, self.torso_albedo))
            else:
                out.append(self.person.surface(center, rot))
                out.append(_torso(center, self.torso_albedo))
                if self.medium is not None:  # worn mask or cut-out print: rigid with the head
                    self.medium.center = center + rot @ self.medium_offset
                    self.medium.rotation = rot
                    out.insert(0, self.medium)
        if self.second is not None:
            sx, sy, sz = self.second_pose
            c2 = np.array([sx, sy, sz], np.float32)
            out.append(self.second.surface(c2, rotation(0.1 * math.sin(t_s), 0, 0), "second", primary=False))
            out.append(_torso(c2, self.torso_albedo))
        return out


TORSO_HALF_W_M, TORSO_HALF_H_M = 0.22, 0.30


def _torso(head_center: np.ndarray, albedo: np.ndarray) -> Surface:
    height, domain, normals = _torso_grids(albedo.shape[:2])
    return _flat("torso", head_center + np.array([0.0, TORSO_HALF_H_M + 0.02, 0.06], np.float32), rotation(0, 0, 0),
                 TORSO_HALF_W_M, TORSO_HALF_H_M, albedo, MATERIAL_CLOTH, height=height, domain=domain,
                 _normals=normals)


@functools.lru_cache(maxsize=4)
def _torso_grids(grid_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Height, domain and normals of a torso grid: the same for every torso of that grid size."""
    gh, gw = grid_shape
    x = np.linspace(-1, 1, gw, dtype=np.float32)[None, :]
    y = np.linspace(-1, 1, gh, dtype=np.float32)[:, None]
    height = (-0.06 * np.sqrt(np.clip(1 - x * x, 0, 1)) + 0 * y).astype(np.float32)
    neck_w = np.abs(x) < 0.28
    shoulders = y > -0.35 + 0.5 * np.abs(x) ** 2
    domain = ((shoulders | (neck_w & (y > -0.9))) & (np.abs(x) < 0.98)).astype(np.float32)
    probe = Surface("torso", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), TORSO_HALF_W_M, TORSO_HALF_H_M,
                    np.zeros((gh, gw, 3), np.float32), MATERIAL_CLOTH, height=height)
    for grid in (height, domain):
        grid.flags.writeable = False  # shared by every torso: never edited in place
    return height, domain, probe.normals()


def _room(rng: np.random.Generator) -> list[Surface]:
    wall_z = float(rng.uniform(1.6, 3.2))
    wall = _flat("wall", (0, 0, wall_z), rotation(rng.uniform(-0.3, 0.3), 0, 0), 4.0, 3.0,
                 _texture(rng, 160, 120, "blocks"), MATERIAL_BACKGROUND)
    clutter = []
    for i in range(int(rng.integers(1, 4))):
        z = float(rng.uniform(1.1, wall_z - 0.1))
        x = float(rng.choice([-1, 1]) * rng.uniform(0.25, 0.9) * z)
        y = float(rng.uniform(-0.3, 0.5) * z)
        kind = ("stripes", "blocks", "plain")[int(rng.integers(3))]
        clutter.append(_flat(f"clutter{i}", (x, y, z), rotation(rng.uniform(-0.5, 0.5), 0, 0),
                             float(rng.uniform(0.1, 0.4)), float(rng.uniform(0.1, 0.5)),
                             _texture(rng, 64, 64, kind), MATERIAL_CLUTTER))
    return clutter + [wall]


def _instrument(scenario: str, clip: Clip, rng: np.random.Generator) -> tuple[Surface, np.ndarray]:
    """The attack instrument and where it sits relative to the (attacker's) head centre."""
    victim = clip.victim
    if scenario in ("print", "cutout"):
        photo, face = photograph(victim, rng)
        photo = np.clip(0.12 + 0.78 * photo, 0, 1)  # paper white and ink black: reduced gamut
        photo = photo * np.array([0.96, 1.0, 1.02], np.float32)  # warm paper tint
        photo = halftone(photo, rng.uniform(2.5, 4.0), rng).astype(np.float32)
        border = int(rng.integers(12, 40))
        paper = cv2.copyMakeBorder(photo, border, border, border, border, cv2.BORDER_CONSTANT,
                                   value=(0.93, 0.95, 0.96))
        face = cv2.copyMakeBorder(face.astype(np.uint8), border, border, border, border, cv2.BORDER_CONSTANT,
                                  value=0).astype(bool)
        ph, pw = paper.shape[:2]
        scale = float(rng.uniform(0.9, 1.12))
        half_w, half_h = pw / 2000.0 / 2 * scale, ph / 2000.0 / 2 * scale
        domain = None
        if scenario == "cutout":
            domain = np.ones((ph, pw), np.float32)
            s = victim.shape
            for cx, cy, rx, ry in ((-s.eye_half_spacing, s.eye_y, 0.016, 0.008),
                                   (s.eye_half_spacing, s.eye_y, 0.016, 0.008),
                                   (0.0, s.mouth_y, s.mouth_half_width * 1.05, 0.009)):
                c = (int(pw / 2 + cx * 2000), int(ph / 2 + (cy + 0.01) * 2000))
                cv2.ellipse(domain, c, (int(rx * 2000), int(ry * 2000)), 0, 0, 360, 0.0, -1)
            offset = np.array([0.0, 0.0, -(clip.person.shape.head_depth + 0.03 + rng.uniform(0, 0.03))], np.float32)
        else:
            offset = np.array([0.0, 0.0, -clip.person.shape.head_depth], np.float32)
        bend = float(rng.uniform(-1.5, 1.5)) if rng.random() < 0.5 else 0.0
        return (Surface("paper", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), half_w, half_h,
                        paper.astype(np.float32), MATERIAL_PAPER, bend=bend, domain=domain, face_region=face,
                        specular=0.06, shininess=6.0), offset)
    if scenario == "replay":
        photo, face = photograph(victim, rng)
        bezel = int(rng.integers(14, 24))
        brightness = float(rng.uniform(0.8, 1.05))
        shown = np.clip(photo * brightness * np.array([1.06, 1.0, 0.94], np.float32) + 0.04, 0, 1)
        screen = cv2.copyMakeBorder(shown, bezel, bezel, bezel, bezel, cv2.BORDER_CONSTANT, value=(0.03, 0.03, 0.03))
        face = cv2.copyMakeBorder(face.astype(np.uint8), bezel, bezel, bezel, bezel, cv2.BORDER_CONSTANT,
                                  value=0).astype(bool)
        sh, sw = screen.shape[:2]
        scale = float(rng.uniform(0.85, 1.0))
        # glare: a soft reflection of a lamp on the glass, added on top of the picture
        yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
        gx, gy = rng.uniform(0.1, 0.9) * sw, rng.uniform(0.05, 0.5) * sh
        glare = np.exp(-(((xx - gx) / (0.18 * sw)) ** 2 + ((yy - gy) / (0.10 * sh)) ** 2)) * rng.uniform(0.2, 0.5)
        screen = np.clip(screen + glare[..., None], 0, 1).astype(np.float32)
        offset = np.array([0.0, 0.0, -clip.person.shape.head_depth], np.float32)
        surf = Surface("screen", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), sw / 4000.0 * scale,
                       sh / 4000.0 * scale, screen, MATERIAL_SCREEN, face_region=face, specular=0.5,
                       shininess=60.0, emissive=True, depth_dropout=0.03,
                       moire_pitch_m=float(rng.uniform(0.00008, 0.00016)))
        surf.albedo = screen
        return surf, offset
    # mask: the victim's face relief, rigid, in resin or latex colour, worn on the attacker's head
    s = victim.shape
    x, y = headmod.texel_grid()
    domain = victim.face_domain.copy()
    for cx in (-s.eye_half_spacing, s.eye_half_spacing):
        domain[((x - cx) / 0.013) ** 2 + ((y - s.eye_y) / 0.0065) ** 2 < 1.0] = 0.0
    # resin, plaster or latex: nearly neutral in colour, unlike skin (whose red channel leads by 20-50 %)
    material = (rng.uniform(0.55, 0.9) * (1.0 + rng.uniform(-0.04, 0.04, 3))).astype(np.float32)
    albedo = np.empty_like(victim.albedo)
    albedo[:] = material
    # painted features: a faded copy of the victim's brows, lips and eyes
    features = 1.0 - np.clip((victim.albedo.mean(axis=2) - 0.25) / 0.4, 0, 1)
    albedo *= (1.0 - 0.5 * features[..., None])
    offset = np.array([0.0, 0.0, -float(rng.uniform(0.006, 0.012))], np.float32)
    return (Surface("mask", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), headmod.HALF_W, headmod.HALF_H,
                    albedo.astype(np.float32), MATERIAL_MASK, height=victim.height, domain=domain,
                    face_region=victim.inner & (domain > 0.5), specular=float(rng.uniform(0.25, 0.5)),
                    shininess=float(rng.uniform(15, 40))), offset)
