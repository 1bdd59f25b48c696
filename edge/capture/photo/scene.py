"""Scenes of the photo world: real people from photographs, and attacks made from real photographs.

A :class:`PhotoClip` has the same contract as the procedural world's clip (the renderer, the room,
the light and the sensor are shared), but every face in it is a real person's: the live person is
a :class:`~edge.capture.photo.lift.PersonCard`, and every attack shows a real photo of a person of
the same split. So a live face and a print differ by the medium, never by who drew the face.

Species: the four the product knew (print, flat or bent; replay; rigid mask; cut-out) and four
after WMCA (George et al., IEEE TIFS 2019): paper glasses (a partial attack), a wrapped print
(curved round the face), a flexible silicone mask and a mannequin head.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.capture.photo.lift import PersonCard
from edge.capture.synthetic.raycast import (
    MATERIAL_CLOTH, MATERIAL_MASK, MATERIAL_PAPER, MATERIAL_SCREEN, MATERIAL_SKIN, Surface,
)
from edge.capture.synthetic.scene import _room as room
from edge.capture.synthetic.scene import halftone, head_pose, rotation

PHOTO_ATTACKS = ("print", "replay", "mask", "cutout", "glasses", "wrapped", "silicone", "mannequin")
PHOTO_SCENARIOS = ("live",) + PHOTO_ATTACKS + ("empty", "mixed")
# Paper and screen sizes (ISO 216 A4/A3; a 6.1" phone and a 10" tablet's active areas), metres.
PAPERS_M = ((0.210, 0.297), (0.297, 0.420))
SCREENS_M = ((0.064, 0.139), (0.135, 0.216))


@dataclass
class ShownFace:
    """Where the attack's (or the live person's) face is, in the local frame of one surface."""

    surface: Surface | None  # None: the wearer's own surface (a partial attack over a live face)
    outline_m: np.ndarray  # K x 3
    landmarks_m: np.ndarray  # 5 x 3


def person_surface(card: PersonCard, name: str = "person", primary: bool = True) -> Surface:
    return Surface(name, np.zeros(3, np.float32), np.eye(3, dtype=np.float32), card.half_w, card.half_h,
                   card.albedo, MATERIAL_SKIN, height=card.height, domain=card.domain,
                   face_region=card.face if primary else None, specular=0.06, shininess=10.0)


def torso_surface(card: PersonCard) -> Surface:
    """Clothes below the card's bottom edge, so a photo cut at the chest does not float in the room."""
    gw, gh = 40, 40
    albedo = np.empty((gh, gw, 3), np.float32)
    albedo[:] = card.body_bgr
    return Surface("torso", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), 0.24, 0.30, albedo,
                   MATERIAL_CLOTH, specular=0.0)


def _resample(card: PersonCard, center_m: np.ndarray, half_w: float, half_h: float, texels_per_m: float,
              grid: np.ndarray | None = None) -> np.ndarray:
    """Cut a window of a card's grid (albedo by default), centred at card-local ``center_m``, at a new texel size."""
    src = card.albedo if grid is None else grid
    gw, gh = max(4, int(2 * half_w * texels_per_m)), max(4, int(2 * half_h * texels_per_m))
    xs = center_m[0] + (np.arange(gw, dtype=np.float32) + 0.5) / texels_per_m - half_w
    ys = center_m[1] + (np.arange(gh, dtype=np.float32) + 0.5) / texels_per_m - half_h
    sh, sw = src.shape[:2]
    mx = (xs + card.half_w) * sw / (2 * card.half_w) - 0.5
    my = (ys + card.half_h) * sh / (2 * card.half_h) - 0.5
    mxx, myy = np.meshgrid(mx, my)
    border = (0.93, 0.95, 0.96) if src.ndim == 3 else 0
    return cv2.remap(src.astype(np.float32), mxx.astype(np.float32), myy.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def _moved(points: np.ndarray, center_m: np.ndarray, half_w: float, half_h: float, scale: float) -> np.ndarray:
    """Card-local points -> the local frame of a window cut at ``center_m`` and shown ``scale`` times life size."""
    out = points.copy()
    out[:, 0] = (points[:, 0] - center_m[0]) * scale
    out[:, 1] = (points[:, 1] - center_m[1]) * scale
    out[:, 2] = 0.0
    return out


@dataclass
class PhotoClip:
    """All random choices of one photo-world scene (same fields the renderer reads from a procedural clip)."""

    scenario: str
    subject: str  # identity of the face shown (the victim's for an attack)
    rng_seed: int
    distance_m: float
    offset_xy: tuple[float, float]
    motion: np.ndarray
    light_dir: np.ndarray
    ambient: float
    light_bgr: np.ndarray
    exposure: float
    white_balance: np.ndarray
    noise_sigma: float
    wearer: PersonCard | None  # the live person, or the person holding or wearing the attack
    background: list[Surface]
    medium: Surface | None = None
    medium_offset: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    rigid: bool = True  # the medium moves with the head (worn) rather than with the hand
    shown: ShownFace | None = None  # the face the detector should find
    _wearer: Surface | None = field(default=None, repr=False)

    @staticmethod
    def create(scenario: str, seed: int, wearer: PersonCard | None, victim: PersonCard | None, subject: str,
               distance_m: float | None = None) -> PhotoClip:
        if scenario not in PHOTO_SCENARIOS or scenario == "mixed":
            raise ValueError(f"PhotoClip.create needs one of {PHOTO_SCENARIOS[:-1]}, got {scenario!r}")
        rng = np.random.default_rng([seed, PHOTO_SCENARIOS.index(scenario), 55])
        distance = float(rng.uniform(0.35, 1.0)) if distance_m is None else float(distance_m)
        motion = np.concatenate([rng.uniform(0.03, 0.18, 3) * np.array([1.0, 0.5, 0.3]), rng.uniform(0.1, 0.4, 3),
                                 rng.uniform(0, 2 * np.pi, 6), rng.uniform(0.005, 0.02, 3)])
        clip = PhotoClip(
            scenario=scenario, subject=subject, rng_seed=int(seed), distance_m=distance,
            offset_xy=(float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.04, 0.05))), motion=motion,
            light_dir=np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.9, 0.1), -1.0], np.float32),
            # the photo already holds its own light: a high ambient share keeps its look
            ambient=float(rng.uniform(0.55, 0.8)),
            light_bgr=np.clip(rng.normal(1.0, 0.06, 3), 0.85, 1.15).astype(np.float32),
            exposure=float(rng.uniform(0.85, 1.2)),
            white_balance=np.clip(rng.normal(1.0, 0.05, 3), 0.9, 1.1).astype(np.float32),
            noise_sigma=float(rng.uniform(0.008, 0.025)), wearer=wearer, background=room(rng))
        if scenario == "empty":
            clip.wearer = None
        elif scenario == "live":
            clip.shown = ShownFace(person_surface(wearer), wearer.outline_m, wearer.landmarks_m)
        else:
            _ATTACK_BUILDERS[scenario](clip, wearer, victim, rng)
        return clip

    def pose(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        return head_pose(self.motion, self.offset_xy, self.distance_m, t_s)

    def _place_person(self, surface: Surface, card: PersonCard, eyes_at: np.ndarray, rot: np.ndarray) -> None:
        """Put a card so that its eye midpoint (card-local, at the card plane) is at ``eyes_at``."""
        e = np.array([card.eye_mid_m[0], card.eye_mid_m[1], 0.0], np.float32)
        surface.center = (eyes_at - rot @ e).astype(np.float32)
        surface.rotation = rot

    def moving_surfaces(self, t_s: float) -> list[Surface]:
        out: list[Surface] = []
        if self.wearer is None:
            return out
        center, rot = self.pose(t_s)
        worn = self.medium is None or self.rigid
        body_at = center if worn else center + np.array([0.0, 0.0, 0.22], np.float32)
        body_rot = rot if worn else rotation(0, 0, 0)
        person = self.shown.surface if (self.scenario == "live" and self.shown) else self._wearer_surface()
        self._place_person(person, self.wearer, body_at, body_rot)
        torso = torso_surface(self.wearer)
        bottom = person.center + body_rot @ np.array([0.0, self.wearer.half_h + torso.half_h - 0.02, 0.10], np.float32)
        torso.center = bottom.astype(np.float32)
        if self.medium is not None:
            if self.rigid:
                self.medium.center = (center + rot @ self.medium_offset).astype(np.float32)
                self.medium.rotation = rot
            else:  # held in a hand: the instrument moves, the attacker stands behind it
                self.medium.center = (center + self.medium_offset).astype(np.float32)
                self.medium.rotation = rot
            out.append(self.medium)
        out += [person, torso]
        return out

    def _wearer_surface(self) -> Surface:
        """The wearer's (or attacker's) surface, made once per clip."""
        if self._wearer is None:
            primary = self.scenario in ("mask", "silicone", "mannequin", "cutout", "glasses")
            self._wearer = _wearer_for(self) if self.scenario == "mannequin" else \
                person_surface(self.wearer, "wearer", primary=primary)
        return self._wearer

    def shown_face_camera(self, t_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Outline and landmarks of the presented face in camera coordinates at ``t_s`` (after placing)."""
        if self.shown is None:
            return None
        self.moving_surfaces(t_s)
        s = self.shown.surface or self._wearer_surface()
        to_cam = lambda p: p @ s.rotation.T + s.center  # noqa: E731
        return to_cam(self.shown.outline_m), to_cam(self.shown.landmarks_m)


# -- attacks -----------------------------------------------------------------------------------------

def _print_image(img: np.ndarray, rng: np.random.Generator, texels_per_m: float) -> np.ndarray:
    """Paper and ink: reduced gamut, warm paper tint, halftone dots, paper grain."""
    img = np.clip(0.10 + 0.80 * img, 0, 1) * np.array([0.96, 1.0, 1.02], np.float32)
    img = halftone(img, rng.uniform(1.8, 3.2), rng)
    grain = cv2.GaussianBlur(rng.normal(0, 1, img.shape[:2]).astype(np.float32), (0, 0), 1.0)
    return np.clip(img * (1 + 0.025 * grain[..., None]), 0, 1).astype(np.float32)


def _face_window(victim: PersonCard, rng: np.random.Generator, whole: bool, paper_m: tuple[float, float]):
    """Centre and half size (card-local metres) of the part of the victim photo that is printed."""
    e = victim.eye_mid_m
    if whole:
        return np.array([0.0, 0.0], np.float32), min(victim.half_w, paper_m[0] / 2), min(victim.half_h, paper_m[1] / 2)
    return (np.array([e[0], e[1] + 0.03], np.float32) + rng.uniform(-0.01, 0.01, 2).astype(np.float32),
            float(rng.uniform(0.09, 0.12)), float(rng.uniform(0.12, 0.15)))


def _build_print(clip: PhotoClip, wearer: PersonCard, victim: PersonCard, rng: np.random.Generator,
                 bend: float | None = None, name: str = "print") -> None:
    paper = PAPERS_M[int(rng.random() < 0.3)]
    scale = float(rng.uniform(0.85, 1.15))  # printed about life size
    whole = rng.random() < 0.5 and bend is None
    center, hw, hh = _face_window(victim, rng, whole, (paper[0] / scale, paper[1] / scale))
    tpm = 1200.0
    img = _print_image(_resample(victim, center, hw, hh, tpm), rng, tpm)
    face = _resample(victim, center, hw, hh, tpm, victim.face.astype(np.float32)) > 0.5
    if whole and rng.random() < 0.6:  # whole photo on a larger sheet: a white margin around it
        m = int(rng.integers(10, 40))
        img = cv2.copyMakeBorder(img, m, m, m, m, cv2.BORDER_CONSTANT, value=(0.93, 0.95, 0.96))
        face = cv2.copyMakeBorder(face.astype(np.uint8), m, m, m, m, cv2.BORDER_CONSTANT, value=0).astype(bool)
        hw, hh = hw + m / tpm, hh + m / tpm
    if bend is None:
        bend = float(rng.uniform(-2.0, 2.0)) if rng.random() < 0.5 else 0.0
    surf = Surface(name, np.zeros(3, np.float32), np.eye(3, dtype=np.float32), hw * scale, hh * scale, img,
                   MATERIAL_PAPER, bend=bend, face_region=face, specular=float(rng.uniform(0.05, 0.3)),
                   shininess=float(rng.uniform(5, 20)))
    e = victim.eye_mid_m
    clip.medium, clip.rigid = surf, False
    clip.medium_offset = np.array([0.0, 0.0, -0.04], np.float32)
    # the print's eye line goes where a face would be: shift so its eyes are at the pose centre
    shift = _moved(np.array([[e[0], e[1], 0]], np.float32), center, hw, hh, scale)[0]
    clip.medium_offset = clip.medium_offset - np.array([shift[0], shift[1], 0.0], np.float32)
    clip.shown = ShownFace(surf, _moved(victim.outline_m, center, hw, hh, scale),
                           _moved(victim.landmarks_m, center, hw, hh, scale))


def _build_wrapped(clip: PhotoClip, wearer: PersonCard, victim: PersonCard, rng: np.random.Generator) -> None:
    # wrapped round a head-sized cylinder: a bend of 5-9 /m puts the edges 2-5 cm behind the centre
    _build_print(clip, wearer, victim, rng, bend=float(rng.uniform(5.0, 9.0)), name="wrapped")


def _build_replay(clip: PhotoClip, wearer: PersonCard, victim: PersonCard, rng: np.random.Generator) -> None:
    sw, sh = SCREENS_M[int(rng.random() < 0.5)]
    zoom = float(rng.uniform(0.45, 0.95)) * min(1.0, sw / 0.14)  # the face smaller than life on a phone
    e = victim.eye_mid_m
    center = np.array([e[0], e[1] + 0.03], np.float32) + rng.uniform(-0.01, 0.01, 2).astype(np.float32)
    tpm = 2500.0
    img = _resample(victim, center, sw / 2 / zoom, sh / 2 / zoom, tpm * zoom)
    face = _resample(victim, center, sw / 2 / zoom, sh / 2 / zoom, tpm * zoom, victim.face.astype(np.float32)) > 0.5
    black = float(rng.uniform(0.03, 0.10))  # an LCD's raised black level
    shown = np.clip(black + (1 - black) * img * float(rng.uniform(0.8, 1.05)), 0, 1) * \
        np.array([1.06, 1.0, 0.94], np.float32)
    bez = int(rng.integers(int(0.004 * tpm), int(0.010 * tpm)))
    screen = cv2.copyMakeBorder(shown.astype(np.float32), bez, bez, bez, bez, cv2.BORDER_CONSTANT, value=(0.03, 0.03, 0.03))
    face = cv2.copyMakeBorder(face.astype(np.uint8), bez, bez, bez, bez, cv2.BORDER_CONSTANT, value=0).astype(bool)
    gh, gw = screen.shape[:2]
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    gx, gy = rng.uniform(0.1, 0.9) * gw, rng.uniform(0.05, 0.5) * gh
    glare = np.exp(-(((xx - gx) / (0.2 * gw)) ** 2 + ((yy - gy) / (0.12 * gh)) ** 2)) * rng.uniform(0.1, 0.45)
    screen = np.clip(screen + glare[..., None], 0, 1).astype(np.float32)
    hw, hh = gw / tpm / 2, gh / tpm / 2
    surf = Surface("screen", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), hw, hh, screen, MATERIAL_SCREEN,
                   face_region=face, specular=0.5, shininess=60.0, emissive=True,
                   depth_dropout=float(rng.uniform(0.05, 0.4)), moire_pitch_m=float(rng.uniform(0.00008, 0.00016)))
    clip.medium, clip.rigid = surf, False
    shift = _moved(np.array([[e[0], e[1], 0]], np.float32), center, 0, 0, zoom)[0]
    clip.medium_offset = np.array([-shift[0], -shift[1], -0.05], np.float32)
    clip.shown = ShownFace(surf, _moved(victim.outline_m, center, 0, 0, zoom), _moved(victim.landmarks_m, center, 0, 0, zoom))


def _victim_on_wearer(wearer: PersonCard, victim: PersonCard, grid: np.ndarray | None = None) -> np.ndarray:
    """The victim's photo (or one of its grids) resampled onto the wearer's card, eyes on eyes, eye spacing to scale."""
    ew = float(np.linalg.norm(wearer.landmarks_m[1, :2] - wearer.landmarks_m[0, :2]))
    ev = float(np.linalg.norm(victim.landmarks_m[1, :2] - victim.landmarks_m[0, :2]))
    s = ev / max(ew, 1e-6)
    gh, gw = wearer.albedo.shape[:2]
    xs = ((np.arange(gw, dtype=np.float32) + 0.5) / gw * 2 - 1) * wearer.half_w
    ys = ((np.arange(gh, dtype=np.float32) + 0.5) / gh * 2 - 1) * wearer.half_h
    vx = victim.eye_mid_m[0] + (xs - wearer.eye_mid_m[0]) * s
    vy = victim.eye_mid_m[1] + (ys - wearer.eye_mid_m[1]) * s
    src = victim.albedo if grid is None else grid
    sh, sw = src.shape[:2]
    mx, my = np.meshgrid((vx + victim.half_w) * sw / (2 * victim.half_w) - 0.5,
                         (vy + victim.half_h) * sh / (2 * victim.half_h) - 0.5)
    return cv2.remap(src.astype(np.float32), mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def height_at(card: PersonCard, xy_m: np.ndarray) -> float:
    """The card's height (metres) at a card-local point."""
    cx, cy = card.texel(np.asarray(xy_m, np.float32)[None, :2])[0]
    gh, gw = card.height.shape
    return float(card.height[int(np.clip(cy, 0, gh - 1)), int(np.clip(cx, 0, gw - 1))])


def _eye_holes(card: PersonCard, domain: np.ndarray, rx_m: float = 0.014, ry_m: float = 0.007) -> np.ndarray:
    out = domain.copy()
    for (cx, cy) in card.texel(card.landmarks_m[:2, :2]):
        gw = card.albedo.shape[1]
        px_per_m = gw / (2 * card.half_w)
        cv2.ellipse(out, (int(cx), int(cy)), (int(rx_m * px_per_m), int(ry_m * px_per_m)), 0, 0, 360, 0.0, -1)
    return out


def _mask_domain(wearer: PersonCard, reach_m: float) -> np.ndarray:
    """The wearer's face mesh grown by ``reach_m`` (where a mask covers), as a 0/1 grid."""
    area = wearer.mesh_area.astype(np.uint8)
    grow = int(reach_m * wearer.albedo.shape[1] / (2 * wearer.half_w))
    return cv2.dilate(area, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)).astype(np.float32) * wearer.domain


def _build_mask(clip: PhotoClip, wearer: PersonCard, victim: PersonCard, rng: np.random.Generator) -> None:
    """A rigid resin or paper-mache mask printed with the victim's face: muted colours, a glossy coat,
    the wearer's face shape (it fits), eye holes, a rim 2 cm past the face, held 6-14 mm out."""
    domain = _eye_holes(wearer, _mask_domain(wearer, 0.02))
    texture = _victim_on_wearer(wearer, victim)
    grey = texture.mean(axis=2, keepdims=True)
    texture = np.clip(grey + rng.uniform(0.4, 0.8) * (texture - grey), 0, 1) * rng.uniform(0.85, 1.05)
    gap, spec, shine = float(rng.uniform(0.006, 0.014)), float(rng.uniform(0.25, 0.5)), float(rng.uniform(15, 40))
    surf = Surface("mask", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), wearer.half_w, wearer.half_h,
                   texture.astype(np.float32), MATERIAL_MASK, height=wearer.height, domain=domain,
                   face_region=wearer.face & (domain > 0.5), specular=spec, shininess=shine)
    _wear(clip, wearer, surf, gap)


def _wear(clip: PhotoClip, wearer: PersonCard, surf: Surface, gap_m: float) -> None:
    """Put a mask surface on the wearer's face, ``gap_m`` in front of it, moving with the head."""
    clip.medium, clip.rigid = surf, True
    e = wearer.eye_mid_m
    clip.medium_offset = np.array([-e[0], -e[1], -gap_m], np.float32)
    clip.shown = ShownFace(surf, wearer.outline_m, wearer.landmarks_m)


SHELL_BASE_M = 0.04  # the scale of a head's own curvature, kept out of the silicone sheet's bridging


def silicone_shell(card: PersonCard, span_m: float) -> np.ndarray:
    """The outer surface of a flexible mask pulled over ``card``'s face (height grid, metres).

    A sheet of silicone stretched over a face cannot follow it into the hollows: it bridges the eye
    sockets, the sides of the nose and the corners of the mouth. Where the face is hollow its
    height (which grows away from the camera) lies behind a smoothed copy of itself (Gaussian,
    ``span_m`` sigma), so the sheet is the nearer of the two: on the nose, cheeks and forehead it
    follows the face, over the hollows it spans them (1-4 mm on the fitted meshes, 2-4 mm at
    the eyes). The head's own curvature (a smoothed copy at ``SHELL_BASE_M``) is taken out first and
    put back after: smoothing a head that turns away would pull the copy back behind every point of
    the face, and the sheet would sink into the hollows. The caller places the shell its thickness in
    front of the face.
    """
    height = card.height.astype(np.float32)
    px_per_m = card.albedo.shape[1] / (2 * card.half_w)
    base = cv2.GaussianBlur(height, (0, 0), SHELL_BASE_M * px_per_m)
    detail = height - base
    return np.minimum(height, base + np.minimum(detail, cv2.GaussianBlur(detail, (0, 0), span_m * px_per_m)))


def _build_silicone(clip: PhotoClip, wearer: PersonCard, victim: PersonCard, rng: np.random.Generator) -> None:
    """A flexible silicone mask of the victim worn by the attacker (WMCA's "flexible mask").

    What tells it from a face, as on the real thing: the shell is 3-6 mm of silicone that bridges the
    wearer's eye sockets, so the wearer's own eyes sit 4-8 mm behind the eye holes' rims; the
    mouth is often open too (the wearer's lips behind it); the skin has a waxy sheen and is painted
    a little off the victim's colour (up to 6 % per channel, in any direction); it ends in a thin
    edge 1.5-3 cm past the face. The mask's face is the victim's photo on the wearer's head shape (a
    custom mask is made to fit). No texture cue that a live face can also show: not blurred (an
    out-of-focus owner is not a mask), not flattened or tinted one way (a fixed tint or a low
    contrast is also a darker or softer-lit skin), so the cues a model can learn are the shell's.
    """
    domain = _eye_holes(wearer, _mask_domain(wearer, float(rng.uniform(0.015, 0.03))),
                        rx_m=float(rng.uniform(0.012, 0.016)), ry_m=float(rng.uniform(0.006, 0.009)))
    if rng.random() < 0.5:
        domain = _mouth_hole(wearer, domain)
    texture = np.clip(_victim_on_wearer(wearer, victim) * rng.uniform(0.94, 1.06, 3).astype(np.float32), 0, 1)
    face = wearer.face & (domain > 0.5)
    height = silicone_shell(wearer, float(rng.uniform(0.012, 0.02)))
    surf = Surface("silicone", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), wearer.half_w, wearer.half_h,
                   texture.astype(np.float32), MATERIAL_SKIN, height=height, domain=domain, face_region=face,
                   specular=float(rng.uniform(0.2, 0.4)), shininess=float(rng.uniform(10, 25)))
    _wear(clip, wearer, surf, float(rng.uniform(0.003, 0.006)))


def _mouth_hole(card: PersonCard, domain: np.ndarray) -> np.ndarray:
    """An opening between the mouth corners (the wearer's lips show through)."""
    out = domain.copy()
    lm = card.landmarks_m
    (cx, cy), = card.texel(lm[3:, :2].mean(axis=0, keepdims=True))
    px_per_m = card.albedo.shape[1] / (2 * card.half_w)
    rx = abs(float(lm[4, 0] - lm[3, 0])) / 2 * 0.9 * px_per_m
    cv2.ellipse(out, (int(cx), int(cy)), (int(rx), int(0.006 * px_per_m)), 0, 0, 360, 0.0, -1)
    return out


def _build_cutout(clip: PhotoClip, wearer: PersonCard, victim: PersonCard, rng: np.random.Generator) -> None:
    _build_print(clip, wearer, victim, rng, bend=float(rng.uniform(-1.5, 1.5)), name="cutout")
    surf = clip.medium
    gh, gw = surf.albedo.shape[:2]
    dom = np.ones((gh, gw), np.float32)
    px_per_m = gw / (2 * surf.half_w)
    lm = clip.shown.landmarks_m
    for k, (rx, ry) in ((0, (0.015, 0.008)), (1, (0.015, 0.008)), (3, (0.0, 0.0))):
        cx, cy = lm[k, 0], lm[k, 1]
        if k == 3:  # mouth: one hole between the corners
            cx, cy = lm[3:, 0].mean(), lm[3:, 1].mean()
            rx, ry = abs(lm[4, 0] - lm[3, 0]) / 2 * 1.05, 0.009
        cv2.ellipse(dom, (int((cx + surf.half_w) * px_per_m), int((cy + surf.half_h) * px_per_m)),
                    (int(rx * px_per_m), int(ry * px_per_m)), 0, 0, 360, 0.0, -1)
    surf.domain = dom
    clip.rigid = True  # held against the face, moving with it
    nose = float(wearer.height.min())  # the print is held just in front of the wearer's nose tip
    clip.medium_offset = np.array([clip.medium_offset[0], clip.medium_offset[1], nose - float(rng.uniform(0.005, 0.03))],
                                  np.float32)


def _build_glasses(clip: PhotoClip, wearer: PersonCard, victim: PersonCard, rng: np.random.Generator) -> None:
    """Paper glasses: a printed band of the victim's eyes worn over the wearer's (a partial attack)."""
    e = victim.eye_mid_m
    tpm = 1200.0
    hw, hh = float(rng.uniform(0.065, 0.08)), float(rng.uniform(0.02, 0.03))
    center = np.array([e[0], e[1]], np.float32)
    img = _print_image(_resample(victim, center, hw, hh, tpm), rng, tpm)
    surf = Surface("glasses", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), hw, hh, img, MATERIAL_PAPER,
                   bend=float(rng.uniform(3.0, 6.0)), specular=0.05)
    clip.medium, clip.rigid = surf, True
    nose_bridge = height_at(wearer, wearer.eye_mid_m) - 0.02
    clip.medium_offset = np.array([0.0, 0.0, nose_bridge - float(rng.uniform(0.005, 0.015))], np.float32)
    clip.shown = ShownFace(None, wearer.outline_m, wearer.landmarks_m)


def _build_mannequin(clip: PhotoClip, wearer: PersonCard, victim: PersonCard, rng: np.random.Generator) -> None:
    clip.rigid = True
    clip.shown = None  # set once the mannequin surface exists (_wearer_for)


# Mannequin paints, RGB in [0, 1]: skin tones from dark to light (a realistic display head), and the
# plain plastics of fashion mannequins (white, grey, black). Drawn per clip; BGR order is made below.
MANNEQUIN_SKIN_RGB = ((0.36, 0.24, 0.18), (0.96, 0.82, 0.72))  # ends of a line through skin tones
MANNEQUIN_PLASTIC_GREY = ((0.82, 0.95), (0.40, 0.70), (0.08, 0.20))  # white, grey, black: grey-level ranges
MANNEQUIN_PLASTICS = ("white", "grey", "black")  # the names of those ranges
MANNEQUIN_BLANK = 0.15  # share of heads with no painted features at all


@dataclass(frozen=True)
class MannequinLook:
    """What a mannequin's paint is before its features: the plastic (``skin`` tone, ``white``, ``grey`` or
    ``black``), its base colour (BGR, 0-1) and whether the head is blank (no painted features)."""

    plastic: str
    base_bgr: np.ndarray
    blank: bool

    @property
    def lightness(self) -> float:
        """Rec. 601 luma of the base colour, 0-1: how dark the paint is, whatever the plastic."""
        b, g, r = (float(x) for x in self.base_bgr)
        return 0.299 * r + 0.587 * g + 0.114 * b


def mannequin_look(rng: np.random.Generator) -> MannequinLook:
    """The first draws of :func:`mannequin_paint` (it calls this): a clip's look from its paint generator
    alone, without the person's card, for tools that ask which mannequins a model passes."""
    if rng.random() < 0.6:
        lo, hi = (np.array(x, np.float32) for x in MANNEQUIN_SKIN_RGB)
        plastic, base_rgb = "skin", lo + (hi - lo) * float(rng.uniform(0, 1))
    else:
        k = int(rng.integers(len(MANNEQUIN_PLASTIC_GREY)))
        g_lo, g_hi = MANNEQUIN_PLASTIC_GREY[k]
        plastic, base_rgb = MANNEQUIN_PLASTICS[k], np.full(3, rng.uniform(g_lo, g_hi), np.float32)
    base = (base_rgb[::-1] * rng.uniform(0.95, 1.05, 3)).astype(np.float32)  # BGR, a slight tint
    return MannequinLook(plastic, base, blank=not rng.random() >= MANNEQUIN_BLANK)


def mannequin_paint_rng(clip_seed: int) -> np.random.Generator:
    """The generator a mannequin clip's paint is drawn from (its surface's draws follow the paint's)."""
    return np.random.default_rng([clip_seed, 77])


def mannequin_paint(card: PersonCard, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A mannequin's painted face (H x W x 3 BGR) and where paint covers the card (H x W bool).

    One paint over face and neck, eyes, brows and lips drawn as soft ellipses at the card's five
    landmarks (or none: a blank head). Nothing of the photo's own detail is kept: real mannequins are
    smooth moulded plastic, so a mannequin that carried the photo's pores and creases would teach a
    model that more fine detail than skin means a mannequin, the wrong way round.
    """
    look = mannequin_look(rng)
    base = look.base_bgr
    h, w = card.albedo.shape[:2]
    paint = np.empty((h, w, 3), np.float32)
    paint[:] = base
    if not look.blank:
        lm = card.texel(card.landmarks_m[:, :2])
        across = lm[1] - lm[0]
        ipd = float(np.linalg.norm(across))
        angle = float(np.degrees(np.arctan2(across[1], across[0])))
        up = np.array([across[1], -across[0]]) / max(ipd, 1e-6)  # towards the brow, in texels
        soft = float(rng.uniform(0.5, 1.5))

        def dab(colour: np.ndarray, shapes: list[tuple[np.ndarray, float, float]]) -> None:
            mask = np.zeros((h, w), np.float32)
            for centre, ax, ay in shapes:
                cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))),
                            (max(1, int(round(ax))), max(1, int(round(ay)))), angle, 0, 360, 1.0, -1)
            mask = cv2.GaussianBlur(mask, (0, 0), soft)[..., None]
            paint[:] = paint * (1 - mask) + colour[None, None, :] * mask

        dark = (base * rng.uniform(0.1, 0.35)).astype(np.float32)
        brow_colour = dark if rng.random() < 0.7 else (base * rng.uniform(0.4, 0.7)).astype(np.float32)
        dab(brow_colour, [(lm[i] + up * ipd * rng.uniform(0.24, 0.32), ipd * rng.uniform(0.2, 0.28), ipd * 0.035)
                          for i in (0, 1)])
        if rng.random() < 0.7:  # whites of the eyes, then irises; otherwise the eye is one dark shape
            dab(np.full(3, rng.uniform(0.75, 0.92), np.float32), [(lm[i], ipd * 0.2, ipd * 0.075) for i in (0, 1)])
            iris = (np.array([0.12, 0.22, 0.3], np.float32) if rng.random() < 0.7 else
                    np.array([0.45, 0.35, 0.2], np.float32)) * rng.uniform(0.6, 1.2)
            dab(iris, [(lm[i], ipd * 0.07, ipd * 0.07) for i in (0, 1)])
        else:
            dab(dark, [(lm[i], ipd * rng.uniform(0.14, 0.2), ipd * 0.05) for i in (0, 1)])
        lips = (base * 0.6 + np.array([0.25, 0.22, 0.45], np.float32) * 0.4) * rng.uniform(0.6, 1.0)
        mouth = lm[3:5].mean(axis=0) - up * ipd * 0.02
        half_width = float(np.linalg.norm(lm[4] - lm[3])) * 0.5
        dab(lips.astype(np.float32), [(mouth, half_width, ipd * rng.uniform(0.08, 0.13))])
    skin = cv2.dilate(card.mesh_area.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) | skin_like(card)
    body = ~skin & (np.arange(h)[:, None] > card.texel(card.landmarks_m[3:4, :2])[0, 1] + 40)
    return np.clip(paint, 0, 1), skin | body


def skin_like(card: PersonCard, reach: float = 14.0) -> np.ndarray:
    """Where the person's photo has the colour of their inner face (forehead, ears, neck): H x W bool.

    A CIE Lab distance to the inner face's median colour, lightness counting 1/2.5 as much as hue
    (shading changes it); ``reach`` 14 was read off the training photos by eye. A mannequin's
    plastic covers all of it, so no strip of the photo's real skin is left between paint and wig.
    """
    lab = cv2.cvtColor(card.albedo.astype(np.float32), cv2.COLOR_BGR2Lab)
    ref = np.median(lab[card.face], axis=0)
    dist = np.sqrt(((lab[..., 0] - ref[0]) / 2.5) ** 2 + (lab[..., 1] - ref[1]) ** 2 + (lab[..., 2] - ref[2]) ** 2)
    near = ((dist < reach) & (card.domain > 0.5)).astype(np.uint8)
    near = cv2.morphologyEx(near, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return cv2.morphologyEx(near, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)).astype(bool)


def _wearer_for(clip: PhotoClip) -> Surface:
    """A mannequin: the wearer's head shape in plastic with painted features (a wig keeps the hair)."""
    card = clip.wearer
    rng = mannequin_paint_rng(clip.rng_seed)
    paint, covered = mannequin_paint(card, rng)
    albedo = card.albedo.copy()
    albedo[covered] = paint[covered]
    surf = Surface("mannequin", np.zeros(3, np.float32), np.eye(3, dtype=np.float32), card.half_w, card.half_h,
                   albedo.astype(np.float32), MATERIAL_MASK, height=card.height, domain=card.domain,
                   face_region=card.face, specular=float(rng.uniform(0.08, 0.5)),
                   shininess=float(rng.uniform(8, 40)))
    clip.shown = ShownFace(surf, card.outline_m, card.landmarks_m)
    return surf


_ATTACK_BUILDERS = {"print": _build_print, "wrapped": _build_wrapped, "replay": _build_replay, "mask": _build_mask,
                    "silicone": _build_silicone, "cutout": _build_cutout, "glasses": _build_glasses,
                    "mannequin": _build_mannequin}
