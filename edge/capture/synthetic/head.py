"""A procedural human head: a relief height grid and an albedo texture, seeded per subject.

The head lives in its own frame (x right, y down, z away from the camera, metres, origin at the
face centre). Its front surface is ``z = height(x, y)``; negative values are nearer the camera.
Proportions follow adult anthropometry (Farkas, *Anthropometry of the Head and Face*, 1994: face
width ~14 cm, eye spacing ~6.3 cm between pupils, nose protrusion 2-3 cm in front of the cheeks).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PX_PER_M = 2000.0  # texture resolution: 0.5 mm per texel, finer than a 0.35 m view at fx 613 needs
HALF_W = 0.095  # texture half-extent, metres (head plus hair)
HALF_H = 0.135

SKIN_TONES_BGR = np.array([
    (196, 212, 245), (170, 196, 236), (150, 180, 225), (120, 155, 205), (98, 130, 182),
    (80, 106, 150), (62, 84, 122),
], dtype=np.float32) / 255.0
HAIR_BGR = np.array([(20, 22, 28), (30, 45, 70), (40, 70, 110), (90, 140, 190), (120, 120, 125)],
                    dtype=np.float32) / 255.0
IRIS_BGR = np.array([(30, 50, 80), (120, 90, 50), (60, 100, 70), (40, 60, 90)], dtype=np.float32) / 255.0


@dataclass(frozen=True)
class HeadShape:
    """Per-subject proportions, all in metres."""

    face_half_width: float
    face_half_height: float
    eye_half_spacing: float
    eye_y: float
    nose_tip_y: float
    nose_protrusion: float
    mouth_y: float
    mouth_half_width: float
    head_depth: float  # how far the face curves back from its centre to its edge
    skin_bgr: tuple[float, float, float]
    hair_bgr: tuple[float, float, float]
    iris_bgr: tuple[float, float, float]
    hairline_y: float
    lip_bgr: tuple[float, float, float]
    brow_thickness: float

    @staticmethod
    def random(rng: np.random.Generator) -> HeadShape:
        skin = SKIN_TONES_BGR[rng.integers(len(SKIN_TONES_BGR))] * rng.uniform(0.93, 1.05, 3)
        lip = np.clip(skin * np.array([0.75, 0.62, 1.02]) * rng.uniform(0.85, 1.0), 0, 1)
        return HeadShape(
            face_half_width=rng.uniform(0.064, 0.074),
            face_half_height=rng.uniform(0.092, 0.104),
            eye_half_spacing=rng.uniform(0.029, 0.034),
            eye_y=rng.uniform(-0.032, -0.024),
            nose_tip_y=rng.uniform(0.012, 0.020),
            nose_protrusion=rng.uniform(0.016, 0.022),
            mouth_y=rng.uniform(0.042, 0.050),
            mouth_half_width=rng.uniform(0.021, 0.026),
            # 60-75 mm puts the face's sides where the photo world's real head meshes have them (MediaPipe's
            # canonical face, three ICT light-stage scans): 51-56 mm behind the nose tip at two pupil
            # distances from the midline on the eye line, 77-83 mm at the face's edge. At 45-56 mm they
            # were 7-20 mm too near, a flatter head than any real one (docs/experiments.md, 5 Dec 2026)
            head_depth=rng.uniform(0.060, 0.075),
            skin_bgr=tuple(np.clip(skin, 0, 1).tolist()),
            hair_bgr=tuple(HAIR_BGR[rng.integers(len(HAIR_BGR))].tolist()),
            iris_bgr=tuple(IRIS_BGR[rng.integers(len(IRIS_BGR))].tolist()),
            hairline_y=rng.uniform(-0.085, -0.068),
            lip_bgr=tuple(lip.tolist()),
            brow_thickness=rng.uniform(0.0035, 0.0055),
        )


def texel_grid() -> tuple[np.ndarray, np.ndarray]:
    """Metric coordinates (x, y) of every texel centre, each H x W float32."""
    w, h = int(2 * HALF_W * PX_PER_M), int(2 * HALF_H * PX_PER_M)
    xs = (np.arange(w, dtype=np.float32) + 0.5) / PX_PER_M - HALF_W
    ys = (np.arange(h, dtype=np.float32) + 0.5) / PX_PER_M - HALF_H
    return np.meshgrid(xs, ys)


def _gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def head_outline(shape: HeadShape, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Normalised radius of the head silhouette: < 1 inside (face, hair, narrowing at the jaw)."""
    hw = shape.face_half_width + 0.010  # hair and ears widen the head beyond the face
    jaw = 1.0 - 0.22 * np.clip((y - 0.02) / 0.09, 0.0, 1.0) ** 1.5
    top = np.where(y < 0, shape.face_half_height + 0.030, shape.face_half_height + 0.004)
    return np.sqrt((x / (hw * jaw)) ** 2 + ((y + 0.004) / top) ** 2)


def face_oval(shape: HeadShape, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Normalised radius of the skin region of the face (< 1 inside)."""
    jaw = 1.0 - 0.25 * np.clip((y - 0.02) / 0.08, 0.0, 1.0) ** 1.5
    return np.sqrt((x / (shape.face_half_width * jaw)) ** 2 + ((y - 0.004) / shape.face_half_height) ** 2)


def height_grid(shape: HeadShape) -> np.ndarray:
    """Relief of the head front, metres, H x W float32 over the texel grid (negative = nearer)."""
    x, y = texel_grid()
    r = head_outline(shape, x, y)
    base = -shape.head_depth * np.sqrt(np.clip(1.0 - np.minimum(r, 1.0) ** 2, 0.0, None))
    ex, ey = shape.eye_half_spacing, shape.eye_y
    relief = (
        -shape.nose_protrusion * _gauss(x, y, 0.0, shape.nose_tip_y, 0.011, 0.012)
        - 0.55 * shape.nose_protrusion * _gauss(x, y, 0.0, shape.nose_tip_y - 0.022, 0.007, 0.018)
        + 0.009 * (_gauss(x, y, ex, ey, 0.015, 0.010) + _gauss(x, y, -ex, ey, 0.015, 0.010))
        - 0.004 * _gauss(x, y, 0.0, ey - 0.018, 0.040, 0.007)
        - 0.005 * (_gauss(x, y, 0.040, 0.012, 0.016, 0.016) + _gauss(x, y, -0.040, 0.012, 0.016, 0.016))
        - 0.005 * _gauss(x, y, 0.0, shape.mouth_y, 0.020, 0.008)
        - 0.006 * _gauss(x, y, 0.0, shape.face_half_height - 0.020, 0.016, 0.012)
    )
    inside = np.clip((1.0 - r) / 0.08, 0.0, 1.0)  # features fade out before the silhouette
    return (base + relief * inside).astype(np.float32)


def _to_px(x: float, y: float) -> tuple[int, int]:
    return int(round((x + HALF_W) * PX_PER_M)), int(round((y + HALF_H) * PX_PER_M))


def _len_px(v: float) -> int:
    return max(1, int(round(v * PX_PER_M)))


def albedo_texture(shape: HeadShape, rng: np.random.Generator) -> np.ndarray:
    """Surface colour (BGR float32 in [0, 1], H x W x 3) painted over the texel grid.

    Drawn features (brows, eyes with iris and pupil, nostrils, lips) give a face detector the same
    dark-light structure a real face has; a low-frequency blotch field keeps skin from looking flat.
    """
    x, y = texel_grid()
    h, w = x.shape
    skin = np.array(shape.skin_bgr, np.float32)
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = skin
    blotch = cv2.GaussianBlur(rng.normal(0, 1, (h // 8, w // 8)).astype(np.float32), (0, 0), 2.0)
    blotch = cv2.resize(blotch, (w, h), interpolation=cv2.INTER_CUBIC)
    tex *= (1.0 + 0.035 * blotch)[..., None]
    # cheeks a little redder, eye region a little darker
    for sx in (-1, 1):
        cheek = _gauss(x, y, sx * 0.040, 0.014, 0.018, 0.014)[..., None]
        tex *= 1.0 + 0.08 * cheek * np.array([-0.5, -0.5, 0.4], np.float32)
        tex *= (1.0 - 0.18 * _gauss(x, y, sx * shape.eye_half_spacing, shape.eye_y, 0.020, 0.012))[..., None]
    # hair: outside the face oval, above the hairline
    oval = face_oval(shape, x, y)
    hair = (oval > 1.0) | (y < shape.hairline_y + 0.010 * (x / shape.face_half_width) ** 2)
    hair &= y < 0.035  # no hair on the jaw and chin outside the oval
    hair_col = np.array(shape.hair_bgr, np.float32) * (1.0 + 0.25 * rng.normal(0, 1, (h, w)).astype(np.float32))[..., None]
    tex = np.where(hair[..., None], hair_col, tex)
    # below the face oval near the chin: neck shadow
    neck = (oval > 1.0) & (y >= 0.035)
    tex = np.where(neck[..., None], skin * 0.7, tex)

    canvas = np.clip(tex * 255.0, 0, 255).astype(np.uint8)
    ink = tuple(int(c * 255 * 0.6) for c in shape.hair_bgr)
    ey, es = shape.eye_y, shape.eye_half_spacing
    for sx in (-1, 1):
        cx = sx * es
        # eyebrow: a thick arc above the eye
        pts = np.array([_to_px(cx + sx * t * 0.018 - sx * 0.004, ey - 0.016 - 0.004 * (1 - t * t))
                        for t in np.linspace(-1, 1, 9)], np.int32)
        cv2.polylines(canvas, [pts], False, ink, _len_px(shape.brow_thickness), cv2.LINE_AA)
        # eye: sclera, iris, pupil, upper lid
        c = _to_px(cx, ey)
        cv2.ellipse(canvas, c, (_len_px(0.0145), _len_px(0.0058)), 0, 0, 360, (225, 230, 235), -1, cv2.LINE_AA)
        iris = tuple(int(v * 255) for v in shape.iris_bgr)
        cv2.circle(canvas, c, _len_px(0.0056), iris, -1, cv2.LINE_AA)
        cv2.circle(canvas, c, _len_px(0.0025), (10, 10, 10), -1, cv2.LINE_AA)
        cv2.circle(canvas, _to_px(cx - 0.0015, ey - 0.0018), _len_px(0.0009), (250, 250, 250), -1, cv2.LINE_AA)
        cv2.ellipse(canvas, c, (_len_px(0.0150), _len_px(0.0062)), 0, 180, 360, (25, 25, 30), _len_px(0.0016),
                    cv2.LINE_AA)
        cv2.ellipse(canvas, c, (_len_px(0.0145), _len_px(0.0058)), 0, 10, 170,
                    tuple(int(v * 255 * 0.75) for v in shape.skin_bgr), _len_px(0.0008), cv2.LINE_AA)
        # nostril
        cv2.ellipse(canvas, _to_px(sx * 0.0075, shape.nose_tip_y + 0.006), (_len_px(0.0035), _len_px(0.0019)),
                    sx * 20, 0, 360, tuple(int(v * 255 * 0.35) for v in shape.skin_bgr), -1, cv2.LINE_AA)
    # lips and the mouth line
    lip = tuple(int(v * 255) for v in shape.lip_bgr)
    my, mw = shape.mouth_y, shape.mouth_half_width
    cv2.ellipse(canvas, _to_px(0.0, my - 0.0028), (_len_px(mw), _len_px(0.0042)), 0, 180, 360, lip, -1, cv2.LINE_AA)
    cv2.ellipse(canvas, _to_px(0.0, my), (_len_px(mw * 0.92), _len_px(0.0062)), 0, 0, 180, lip, -1, cv2.LINE_AA)
    cv2.line(canvas, _to_px(-mw, my), _to_px(mw, my), tuple(int(v * 0.35) for v in lip), _len_px(0.0018),
             cv2.LINE_AA)
    out = cv2.GaussianBlur(canvas, (0, 0), 1.2).astype(np.float32) / 255.0
    return out


def landmarks_3d(shape: HeadShape) -> np.ndarray:
    """The five detector landmarks in the head frame (5 x 3): right eye, left eye, nose, mouth R, mouth L.

    "Right" is the subject's right, which appears on the image's left.
    """
    z_eye = -shape.head_depth * 0.85
    return np.array([
        (-shape.eye_half_spacing, shape.eye_y, z_eye),
        (shape.eye_half_spacing, shape.eye_y, z_eye),
        (0.0, shape.nose_tip_y, -shape.head_depth - shape.nose_protrusion),
        (-shape.mouth_half_width * 0.9, shape.mouth_y, -shape.head_depth * 0.85),
        (shape.mouth_half_width * 0.9, shape.mouth_y, -shape.head_depth * 0.85),
    ], np.float32)


def inner_face_region(shape: HeadShape, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The inner face (brows to chin, between the outer eye corners): where relief is judged."""
    return (np.abs(x) < shape.eye_half_spacing + 0.014) & (y > shape.eye_y - 0.020) & (
        y < shape.mouth_y + 0.018)
