"""Real eyeglasses on training faces (``--augment glasses``), live and attack alike.

Why: of the fifteen people in the photo world only one wears glasses, and he is in the test split.
The model never saw a live face with glasses in training, and the nearest thing it saw was the paper
glasses attack (a printed band over the eyes, with depth holes and a step at its edges). On the
unseen people, every live face it refused was his (8 of 116 frames with his dark frames and the depth
holes they leave; 0 of 484 for the other three). A good share of the people at any door wear glasses,
so the model has to learn that glasses by themselves are neither live nor attack: they are drawn on a
share of all faces, whatever the class (the paper-glasses attack excepted, whose band sits where the
frames would).

What is drawn, on the 128 px crop from its five landmarks (eyes, nose, mouth corners):
- lenses: ellipses centred a little below each eye, half-width 0.36-0.50 of the eye distance, height
  0.55-0.85 of that; a slight tint, and on half the faces a soft specular streak (a lamp on the glass);
- a frame around each lens 1-3 px wide (1.5-5 mm at 0.6 m), a bridge between them and the temples
  towards the ears; dark (black, brown) or metal (grey, gold);
- depth: the D400 cameras rarely resolve a 2-4 mm frame. Either the frame reads a few millimetres in
  front of the face (8-16 mm, the distance of a frame from the eyes) or it leaves holes along its
  line, as the stereo matcher finds no pattern there; on some faces the lenses' reflections leave a few
  small holes too. The lenses themselves pass the projector's pattern: the eyes' depth stays.

Everything follows the face's roll (the eye line). Faces without landmarks are left as they are.
"""

from __future__ import annotations

import cv2
import numpy as np

from train.augment import DEPTH_WINDOW_MM  # 1 mm = 1/200 of the normalised depth
SKIP_SPECIES = ("glasses",)  # the paper-glasses attack: its band is where the frames would be
SUPERSAMPLE = 4  # the frame is drawn at 4x and area-averaged: a 1 px line at 128 px stays a soft 1 px


def _frame_colour(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.65:  # dark: black, brown, tortoise
        base = rng.uniform(0.02, 0.22)
        return np.array([base * rng.uniform(0.8, 1.6), base * rng.uniform(0.8, 1.2), base], np.float32)
    grey = rng.uniform(0.45, 0.8)  # metal: grey or gold (RGB order)
    gold = rng.random() < 0.4
    return np.array([grey, grey * (0.85 if gold else 1.0), grey * (0.55 if gold else 1.0)], np.float32)


def glasses_masks(size: int, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frame coverage [S,S] in [0, 1] and lens mask [S,S] (bool) for one face's landmarks [5,2] in [0, 1]."""
    k = SUPERSAMPLE
    big = size * k
    eyes = np.asarray(landmarks[:2], np.float64) * big
    d = float(np.linalg.norm(eyes[1] - eyes[0]))
    roll = float(np.degrees(np.arctan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0])))
    half_w = d * rng.uniform(0.36, 0.50)
    half_h = half_w * rng.uniform(0.55, 0.85)
    drop = d * rng.uniform(0.02, 0.10)  # lenses sit a little below the pupils' line
    thick = max(1, int(round(rng.uniform(1.0, 3.0) * k)))
    frame = np.zeros((big, big), np.uint8)
    lens = np.zeros((big, big), np.uint8)
    normal = np.array([-np.sin(np.radians(roll)), np.cos(np.radians(roll))])
    along = np.array([np.cos(np.radians(roll)), np.sin(np.radians(roll))])
    outer = []
    for eye, side in ((eyes[0], -1.0), (eyes[1], 1.0)):
        c = eye + normal * drop
        axes = (int(round(half_w)), int(round(half_h)))
        pt = (int(round(c[0])), int(round(c[1])))
        cv2.ellipse(lens, pt, axes, roll, 0, 360, 1, -1)
        cv2.ellipse(frame, pt, axes, roll, 0, 360, 1, thick)
        outer.append((c + along * side * half_w, side))
    # bridge: between the lenses' inner edges, at the height of the eyes
    inner_l = eyes[0] + normal * drop + along * half_w
    inner_r = eyes[1] + normal * drop - along * half_w
    lift = -normal * half_h * 0.35
    cv2.line(frame, tuple(int(v) for v in inner_l + lift), tuple(int(v) for v in inner_r + lift), 1, thick)
    # temples: from the outer edges of the lenses towards the ears
    for start, side in outer:
        end = start + along * side * d * rng.uniform(0.25, 0.6) - normal * half_h * 0.3
        cv2.line(frame, tuple(int(v) for v in start - normal * half_h * 0.3), tuple(int(v) for v in end), 1, thick)
    frame_cov = cv2.resize(frame.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    lens_mask = cv2.resize(lens.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) > 0.5
    return np.clip(frame_cov, 0.0, 1.0), lens_mask & (frame_cov < 0.5)


def draw_eyeglasses(rgb: np.ndarray, depth: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One crop (``rgb`` [3,S,S], ``depth`` [1,S,S], float32 in [0, 1], 0 depth = no data) with glasses."""
    size = rgb.shape[-1]
    cover, lens = glasses_masks(size, landmarks, rng)
    img = rgb.copy()
    # lenses: a slight tint, and sometimes a soft streak of a lamp's reflection
    tint = rng.uniform(0.86, 1.0, 3).astype(np.float32)
    img = np.where(lens[None], img * tint[:, None, None], img)
    if rng.random() < 0.5:
        streak = np.zeros((size, size), np.float32)
        ys, xs = np.nonzero(lens)
        if len(xs):
            i = rng.integers(len(xs))
            cv2.ellipse(streak, (int(xs[i]), int(ys[i])), (int(rng.integers(2, 6)), 1), float(rng.uniform(0, 180)),
                        0, 360, 1.0, -1)
            streak = cv2.GaussianBlur(streak, (0, 0), 1.0) * lens * rng.uniform(0.2, 0.6)
            img = img + streak[None] * (1.0 - img)
    colour = _frame_colour(rng)
    img = img * (1.0 - cover[None]) + colour[:, None, None] * cover[None]
    dep = depth[0].copy()
    line = cover > 0.25
    valid = dep > 0
    if rng.random() < 0.5:  # the frame reads in front of the face
        nearer = rng.uniform(8.0, 16.0) / DEPTH_WINDOW_MM
        grown = cv2.dilate(line.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0 if rng.random() < 0.5 else line
        dep = np.where(grown & valid, np.clip(dep + nearer, 1e-4, 1.0), dep)
    else:  # or leaves holes along its line
        dep = np.where(line & (rng.random((size, size)) < rng.uniform(0.4, 0.95)), 0.0, dep)
    if rng.random() < 0.3:  # reflections on the lenses
        dep = np.where(lens & (rng.random((size, size)) < rng.uniform(0.02, 0.15)), 0.0, dep)
    return np.clip(img, 0.0, 1.0).astype(np.float32), dep[None].astype(np.float32)


def add_eyeglasses(rgb: np.ndarray, depth: np.ndarray, landmarks: np.ndarray | None, species: np.ndarray,
                   rng: np.random.Generator, fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch [N,3,S,S] / [N,1,S,S] with glasses drawn on each face with probability ``fraction``
    (not on the paper-glasses attack, nor on faces without finite landmarks); returns the batch and
    which faces got them."""
    worn = np.zeros(rgb.shape[0], bool)
    if landmarks is None or fraction <= 0:
        return rgb, depth, worn
    out_rgb, out_depth = rgb.copy(), depth.copy()
    for i in range(rgb.shape[0]):
        if rng.random() >= fraction or str(species[i]) in SKIP_SPECIES or not np.isfinite(landmarks[i]).all():
            continue
        out_rgb[i], out_depth[i] = draw_eyeglasses(rgb[i], depth[i], landmarks[i], rng)
        worn[i] = True
    return out_rgb, out_depth, worn
