"""Lift a real photograph of a person onto real head geometry: a textured relief card.

A :class:`PersonCard` is what the ray caster needs to draw the whole person from the photo in 3D:
the photo (albedo), the segmented person (domain: face, hair, ears, neck, shoulders), and a height
grid in metres. The face's height comes from MediaPipe's canonical face mesh (468 vertices,
``meshes/canonical_face_model.obj``), either as it is (an average adult face) or carried into the
shape of one of the ICT Face Model's light-stage head scans (:data:`HEADS`, :func:`head_shape`),
posed to the photo's five landmarks with ``cv2.solvePnP`` (rotation and translation: better than a
similarity fit, which cannot turn the mesh with a turned head). Around the face stands the scan's
own head (skull, ears, jaw, neck). Outside the head the surface continues from its border depth and
slope, then curves away like a sphere of head radius (hair a little behind the scalp); below the
neck the shoulders stand behind the face on a torso's curve. Until LIFT_VERSION 6 the face stood
alone and the surface went on flat beside it (a flange round every face, like a mask's rim); until
5 also above it (a crease across the forehead, lit from above a bright seam).

Scale: the mesh is life size (eye centres 58-63 mm apart), so the pose's distance over the assumed
focal length gives metres per photo pixel. Cards are cached per photo and head shape (``photo`` under the cache root,
:mod:`edge.cache`).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.cache import cache_dir as cache_folder
from edge.capture.photo.composite import COMPOSITE_VERSION, composite_face
from edge.errors import SourceError

LIFT_VERSION = 6  # 5: the continuation outside the mesh keeps the border's slope (no forehead crease); 6: head shapes
TEXELS_PER_M = 1500.0  # card resolution: 0.67 mm per texel (a face at 0.35 m is 0.57 mm per pixel at fx 613)
FOCAL_PER_SIZE = 1.5  # assumed photo focal length, in units of the photo's longer side (a short tele portrait)
HEAD_RADIUS_M = 0.07  # how fast the head curves away outside the mesh (a sphere of about head radius)
NECK_BEHIND_M = 0.085  # neck surface behind the nose tip (Farkas 1994: nose tip to neck front ~8-10 cm)
# MediaPipe canonical mesh vertices of YuNet's five landmarks (right eye, left eye, nose tip, mouth
# right, mouth left; "right" is the person's right, the image's left). Eyes: mean of the two corners.
EYE_RIGHT = (33, 133)
EYE_LEFT = (263, 362)
NOSE_TIP = 1
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
CHIN = 152  # the mesh's lowest point of the chin: the neck starts below it
# The mesh's face oval (its silhouette ring), used for the face outline in the scene truth.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


@dataclass(frozen=True)
class FaceMesh:
    vertices_m: np.ndarray  # N x 3, card-local frame: x right, y down, z away from the camera
    triangles: np.ndarray  # M x 3 vertex indices

    def landmarks_m(self) -> np.ndarray:
        v = self.vertices_m
        return np.stack([v[list(EYE_RIGHT)].mean(0), v[list(EYE_LEFT)].mean(0), v[NOSE_TIP], v[MOUTH_RIGHT],
                         v[MOUTH_LEFT]]).astype(np.float32)


def _read_bytes(path: Path) -> bytes:
    """A mesh file's bytes, or a one-line error naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read face mesh {path} ({exc.strerror}); the photo world needs the shared "
                          "data's meshes/ folder") from None


def _read_obj(path: Path) -> tuple[np.ndarray, list[list[int]]]:
    """Vertices (centimetres, as stored) and faces (0-based vertex indices) of an OBJ file."""
    verts, faces = [], []
    for line in _read_bytes(Path(path)).decode().splitlines():
        if line.startswith("v "):
            verts.append([float(t) for t in line.split()[1:4]])
        elif line.startswith("f "):
            faces.append([int(t.split("/")[0]) - 1 for t in line.split()[1:]])
    return np.asarray(verts, np.float64), faces


def _to_card_frame(v_cm: np.ndarray) -> np.ndarray:
    """OBJ centimetres, y up, z towards the viewer -> metres, y down, z away."""
    return (v_cm * np.array([0.01, -0.01, -0.01])).astype(np.float32)


# Head shapes a person can be given (``meshes/`` files of the shared data). The ICT Face Model's
# heads are light-stage scans of real people (a generic neutral head and two identities); each is
# carried onto the canonical mesh's topology (below), so landmarks, chin and face oval stay the same
# vertices whatever the shape.
HEAD_MESHES = {"mediapipe": "canonical_face_model.obj", "ict-neutral": "ict_generic_neutral_mesh.obj",
               "ict-000": "ict_identity000.obj", "ict-001": "ict_identity001.obj"}
HEADS = tuple(HEAD_MESHES)
ICT_FACE_VERTICES = 9409  # the ICT model's face area is its first 9,409 vertices (ICT-FaceKit's own split)
ICT_HEAD_VERTICES = 11248  # then the head and neck; after them mouth and eye sockets, teeth and eyeballs


def _nearest(points: np.ndarray, cloud: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the k nearest cloud points of each point (brute force, in chunks)."""
    d_all, i_all = [], []
    for chunk in np.array_split(points, max(1, len(points) // 64)):
        d2 = ((chunk[:, None, :] - cloud[None]) ** 2).sum(-1)
        idx = np.argmin(d2, axis=1)[:, None] if k == 1 else np.argpartition(d2, k, axis=1)[:, :k]
        d_all.append(np.sqrt(np.take_along_axis(d2, idx, 1)))
        i_all.append(idx)
    return np.concatenate(d_all), np.concatenate(i_all)


@dataclass(frozen=True)
class HeadShape:
    face: FaceMesh  # the canonical mesh's topology in this head's shape (landmarks, chin, face oval)
    head: FaceMesh  # the scanned head around it: skull, ears, jaw, neck (same frame)


def _align(canonical_cm: np.ndarray, scan_cm: np.ndarray, iterations: int = 30) -> tuple[np.ndarray, float, np.ndarray]:
    """Similarity (R, s, t) that puts the canonical mesh on a scanned face (ICP from nose tip on nose
    tip): aligned = s * canonical @ R.T + t."""
    rot, scale, shift = np.eye(3), 1.0, scan_cm[int(np.argmax(scan_cm[:, 2]))] - canonical_cm[NOSE_TIP]
    cur = canonical_cm + shift
    for _ in range(iterations):
        tgt = scan_cm[_nearest(cur, scan_cm)[1][:, 0]]
        mu_s, mu_t = cur.mean(0), tgt.mean(0)
        a, b = cur - mu_s, tgt - mu_t
        u, sv, vt = np.linalg.svd(a.T @ b)
        d = np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))])
        r = vt.T @ d @ u.T
        s = float((sv * np.diag(d)).sum() / (a ** 2).sum())
        cur = s * (cur - mu_s) @ r.T + mu_t
        rot, scale, shift = r @ rot, s * scale, s * (shift - mu_s) @ r.T + mu_t
    return rot, scale, shift


def shape_onto(canonical_cm: np.ndarray, scan_cm: np.ndarray, head_cm: np.ndarray,
               keep_scan_size: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """A scanned head carried onto the canonical mesh: the scan's face surface under each canonical
    vertex (the inverse-distance mean of its three nearest scan vertices once the canonical mesh is
    aligned to the scan), the scan's whole head (``head_cm``) in the same frame, and the mean fit
    distance (cm). Both come back in the canonical frame: at the scan's own size (real heads differ by
    several per cent), or with ``keep_scan_size=False`` the canonical face itself, unchanged, with the
    scan's head scaled to it (the scan then only dresses the canonical face)."""
    rot, scale, shift = _align(canonical_cm, scan_cm)
    dist, idx = _nearest(scale * canonical_cm @ rot.T + shift, scan_cm, 3)
    w = 1.0 / np.maximum(dist, 1e-3)
    surface = (scan_cm[idx] * w[..., None]).sum(1) / w.sum(1, keepdims=True)
    back_face, back_head = ((pts - shift) @ rot / scale for pts in (surface, head_cm))  # canonical frame and size
    if not keep_scan_size:
        return canonical_cm, back_head, float(dist[:, 0].mean())
    centre = back_face.mean(0)
    return (centre + (back_face - centre) * scale, centre + (back_head - centre) * scale,
            float(dist[:, 0].mean()))


# Morphed heads, ``morph-K``: head shapes no scan has, for measuring (and training) how a model fares on
# head geometry it has never seen. The ICT scans share one topology, so a morph is the neutral scan
# plus weights of the two identities' offsets from it (outside the pair's span too, up to half an
# offset beyond: features stronger or weaker than either person's), stretched along each axis by a
# few per cent (adult head breadth, length and face height each vary by about 4 % across people:
# Farkas 1994's norms). K picks the draw.
MORPH_PREFIX = "morph-"
MORPH_IDENTITY_RANGE = (-0.5, 1.5)
MORPH_STRETCH = 0.06  # each axis scaled by 1 +- up to this


def is_morph(head: str) -> bool:
    return head.startswith(MORPH_PREFIX) and head[len(MORPH_PREFIX):].isdigit()


def check_head(head: str) -> str:
    if head not in HEAD_MESHES and not is_morph(head):
        raise SourceError(f"unknown head shape '{head}'; use one of: {', '.join(HEADS)}, or {MORPH_PREFIX}K "
                          f"(K = 0, 1, ...: a head morphed between the scans)")
    return head


def morph_weights(head: str) -> tuple[np.ndarray, np.ndarray]:
    """The identity weights (2) and per-axis stretch (3: x, y, z) of the morphed head ``morph-K``."""
    rng = np.random.default_rng([int(head[len(MORPH_PREFIX):]), 7177])
    return (rng.uniform(*MORPH_IDENTITY_RANGE, size=2),
            1.0 + rng.uniform(-MORPH_STRETCH, MORPH_STRETCH, size=3))


def head_files(meshes_dir: str, head: str) -> tuple[Path, ...]:
    """The mesh files a head shape is made from: the canonical face and the scan(s) it is carried to
    (``mediapipe``: the neutral scan, which only dresses the canonical face; a morph: all three)."""
    check_head(head)
    scans = (("ict-neutral", "ict-000", "ict-001") if is_morph(head)
             else ("ict-neutral" if head == "mediapipe" else head,))
    return (Path(meshes_dir) / HEAD_MESHES["mediapipe"], *(Path(meshes_dir) / HEAD_MESHES[s] for s in scans))


def _scan_vertices(paths: tuple[Path, ...], head: str) -> tuple[np.ndarray, list[list[int]]]:
    """The scan a head shape is carried to: one file's vertices, or a morph's blend of the three."""
    scans = [_read_obj(p) for p in paths]
    for (vertices, _), path in zip(scans, paths):
        if len(vertices) < ICT_HEAD_VERTICES:
            raise SourceError(f"{path}: not an ICT Face Model head ({len(vertices)} vertices, expected at least "
                              f"{ICT_HEAD_VERTICES})")
    if not is_morph(head):
        return scans[0]
    n = min(len(v) for v, _ in scans)
    neutral, one, two = (v[:n] for v, _ in scans)
    identity, stretch = morph_weights(head)
    blend = neutral + identity[0] * (one - neutral) + identity[1] * (two - neutral)
    centre = blend[:ICT_HEAD_VERTICES].mean(0)
    return centre + (blend - centre) * stretch, scans[0][1]


@functools.lru_cache(maxsize=64)
def head_shape(meshes_dir: str, head: str) -> HeadShape:
    """The canonical face mesh in the shape of ``head`` (one of :data:`HEADS`, or a morph) and the
    scanned head around it (``mediapipe``: the canonical face itself, dressed with the ICT generic
    neutral head)."""
    canonical_path, *scan_paths = head_files(meshes_dir, head)
    canonical_cm, faces = _read_obj(canonical_path)
    scan, scan_faces = _scan_vertices(tuple(scan_paths), head)
    # face, skull, ears and neck only; quads split in two
    head_tris = [t for f in scan_faces if max(f) < ICT_HEAD_VERTICES
                 for t in ([f[0], f[1], f[2]], [f[0], f[2], f[3]])[:len(f) - 2]]
    face_cm, head_cm, _ = shape_onto(canonical_cm, scan[:ICT_FACE_VERTICES], scan[:ICT_HEAD_VERTICES],
                                     keep_scan_size=head != "mediapipe")
    triangles = np.asarray([f[:3] for f in faces], np.int32)
    return HeadShape(FaceMesh(_to_card_frame(face_cm), triangles),
                     FaceMesh(_to_card_frame(head_cm), np.asarray(head_tris, np.int32)))


@dataclass(frozen=True)
class PersonCard:
    """A person from one photo as a relief card; local frame metres, origin at the card's centre plane."""

    albedo: np.ndarray  # H x W x 3 float32 BGR in [0, 1]
    height: np.ndarray  # H x W float32 metres, negative = nearer (nose tip is the minimum)
    domain: np.ndarray  # H x W float32, 1 = the person
    face: np.ndarray  # H x W bool: inner face (mesh area, eroded), for the truth face mask
    mesh_area: np.ndarray  # H x W bool: where the fitted face mesh lies
    half_w: float
    half_h: float
    landmarks_m: np.ndarray  # 5 x 3 card-local positions of YuNet's five landmarks
    outline_m: np.ndarray  # K x 3 face-oval points, card-local
    body_bgr: np.ndarray  # 3: mean colour of the clothes at the card's bottom edge
    yaw_deg: float  # how far the photographed head is turned (from the fit)

    @property
    def eye_mid_m(self) -> np.ndarray:
        return self.landmarks_m[:2].mean(axis=0)

    def texel(self, xy_m: np.ndarray) -> np.ndarray:
        """Card-local metres (N x 2) -> texel coordinates (N x 2, column, row)."""
        gh, gw = self.albedo.shape[:2]
        return np.stack([(xy_m[:, 0] + self.half_w) * gw / (2 * self.half_w) - 0.5,
                         (xy_m[:, 1] + self.half_h) * gh / (2 * self.half_h) - 0.5], axis=1)


def cache_dir() -> Path:
    """``photo`` under the one cache root (:func:`edge.cache.cache_root`)."""
    return cache_folder("photo")


def _detect(image: np.ndarray, yunet_path: Path) -> np.ndarray:
    """Five landmarks of the largest face (photo pixels), found by YuNet at up to 640 px."""
    h, w = image.shape[:2]
    factor = min(1.0, 640.0 / max(h, w))
    small = cv2.resize(image, (int(round(w * factor)), int(round(h * factor))), interpolation=cv2.INTER_AREA)
    det = cv2.FaceDetectorYN.create(str(yunet_path), "", (small.shape[1], small.shape[0]), 0.6, 0.3, 5000)
    _, rows = det.detect(small)
    if rows is None or len(rows) == 0:
        raise SourceError("no face found")
    best = max(rows, key=lambda r: r[2] * r[3])
    return (np.asarray(best[4:14], np.float32).reshape(5, 2) / factor).astype(np.float32)


def _fit_pose(mesh: FaceMesh, landmarks_px: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """Rotation, translation (camera frame, metres) and focal length that put the mesh on the landmarks."""
    h, w = size
    f = FOCAL_PER_SIZE * max(h, w)
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float64)
    obj = mesh.landmarks_m().astype(np.float64)
    # start facing the camera at the distance the eye spacing implies, then refine
    eye_px = float(np.linalg.norm(landmarks_px[1] - landmarks_px[0]))
    z0 = f * 0.063 / max(eye_px, 1.0)
    c = landmarks_px[:2].mean(axis=0)
    tvec = np.array([[(c[0] - w / 2) * z0 / f], [(c[1] - h / 2) * z0 / f], [z0]], np.float64)
    rvec = np.zeros((3, 1), np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, landmarks_px.astype(np.float64), k, None, rvec, tvec, True,
                                  cv2.SOLVEPNP_ITERATIVE)
    rot = cv2.Rodrigues(rvec)[0]
    yaw = math.degrees(math.atan2(-rot[2, 0], math.hypot(rot[0, 0], rot[1, 0])))
    if not ok or abs(yaw) > 50 or tvec[2, 0] <= 0:  # a fit that turned the face away: keep it frontal
        rot, tvec = np.eye(3), np.array([[float(tvec[0, 0])], [float(tvec[1, 0])], [z0]])
    return rot.astype(np.float32), tvec.ravel().astype(np.float32), float(f)


def _rasterise(points_px: np.ndarray, z: np.ndarray, triangles: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest z per pixel over the triangles (inf where none): a small z-buffer."""
    h, w = shape
    out = np.full((h, w), np.inf, np.float32)
    for tri in triangles:
        p = points_px[tri]
        x0, y0 = np.floor(p.min(axis=0)).astype(int)
        x1, y1 = np.ceil(p.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
        if x0 > x1 or y0 > y1:
            continue
        yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float32)
        (ax, ay), (bx, by), (cx, cy) = p
        den = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        if abs(den) < 1e-9:
            continue
        l1 = ((by - cy) * (xx - cx) + (cx - bx) * (yy - cy)) / den
        l2 = ((cy - ay) * (xx - cx) + (ax - cx) * (yy - cy)) / den
        l3 = 1.0 - l1 - l2
        inside = (l1 >= -1e-4) & (l2 >= -1e-4) & (l3 >= -1e-4)
        zz = l1 * z[tri[0]] + l2 * z[tri[1]] + l3 * z[tri[2]]
        win = out[y0:y1 + 1, x0:x1 + 1]
        np.minimum(win, np.where(inside, zz, np.inf), out=win)
    return out


def _rasterise_facing(points_px: np.ndarray, z: np.ndarray, triangles: np.ndarray,
                     shape: tuple[int, int]) -> np.ndarray:
    """:func:`_rasterise` of a whole head's triangles that face the camera (the face area's winding
    says which way that is); the far half of the head is hidden anyway, so culling it changes no depth."""
    a, b, c = (points_px[triangles[:, i]] for i in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    front = np.sign(cross[(triangles < ICT_FACE_VERTICES).all(axis=1)].sum())
    return _rasterise(points_px, z, triangles[cross * front > 0], shape)


def lift_photo(image: np.ndarray, landmarks_px: np.ndarray, person_prob: np.ndarray, mesh: FaceMesh,
               head: FaceMesh | None = None) -> PersonCard:
    """The card for one photo (BGR uint8), its five landmarks and its person probability map; ``head``
    (in ``mesh``'s frame) gives the skull, ears, jaw and neck around the face."""
    h, w = image.shape[:2]
    rot, t, f = _fit_pose(mesh, landmarks_px, (h, w))
    cam = mesh.vertices_m @ rot.T + t  # camera frame of the photo
    m_per_px = float(t[2]) / f  # at the depth of the mesh origin
    # crop: the person around the face, at most 0.30 m to each side, 0.16 m above the eyes, 0.34 m below them
    eye = landmarks_px[:2].mean(axis=0)
    half_px, up_px, down_px = 0.30 / m_per_px, 0.16 / m_per_px, 0.34 / m_per_px
    x0, x1 = int(max(0, eye[0] - half_px)), int(min(w, eye[0] + half_px))
    y0, y1 = int(max(0, eye[1] - up_px)), int(min(h, eye[1] + down_px))
    # texel grid of the crop
    scale = m_per_px * TEXELS_PER_M  # texels per photo pixel
    gw, gh = max(8, int(round((x1 - x0) * scale))), max(8, int(round((y1 - y0) * scale)))
    crop = image[y0:y1, x0:x1]
    albedo = cv2.resize(crop, (gw, gh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    albedo = albedo.astype(np.float32) / 255.0
    prob = cv2.resize(person_prob[y0:y1, x0:x1], (gw, gh), interpolation=cv2.INTER_LINEAR)
    domain = (prob > 0.5).astype(np.float32)
    def texel_of(points_cam: np.ndarray) -> np.ndarray:
        """Photo-camera points (N x 3) -> texel coordinates of the card (N x 2)."""
        uv = points_cam[:, :2] / points_cam[:, 2:3] * f + np.array([w / 2, h / 2], np.float32)
        return (uv - np.array([x0, y0], np.float32)) * scale

    # the mesh in texel coordinates, its depth relative to the mesh origin's depth (the card plane)
    tex = texel_of(cam)
    z_mesh = _rasterise(tex, cam[:, 2] - t[2], mesh.triangles, (gh, gw))
    area = np.isfinite(z_mesh)
    z_known = np.where(area, z_mesh, 0.0).astype(np.float32)
    known = area
    if head is not None:
        # the scanned head around the face, its depth matched to the face's along the face's edge
        head_cam = head.vertices_m @ rot.T + t
        z_head = _rasterise_facing(texel_of(head_cam), head_cam[:, 2] - t[2], head.triangles, (gh, gw))
        inner = cv2.erode(area.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        rim = area & ~inner & np.isfinite(z_head)
        offset = float(np.median(z_mesh[rim] - z_head[rim])) if rim.any() else 0.0
        around = np.isfinite(z_head) & ~area
        z_known = np.where(around, z_head + offset, z_known).astype(np.float32)
        known = area | around
    # outside what is known: continue its border depth and outward slope (inpaint both), then curve
    # away with the distance from it
    lo, hi = float(z_known[known].min()), float(z_known[known].max())
    z8 = np.where(known, (z_known - lo) / max(hi - lo, 1e-6) * 65535.0, 0).astype(np.float32)
    small = max(1, int(max(gw, gh) / 200))  # inpaint on a coarse grid: the far field is smooth anyway
    z_in = _inpaint16(z8, known, small)
    z_out = lo + z_in / 65535.0 * (hi - lo)
    dist_px = cv2.distanceTransform((~known).astype(np.uint8), cv2.DIST_L2, 5)
    d_m = dist_px / TEXELS_PER_M
    slope = _border_slope(z_known, known, small)
    z_out = z_out + np.minimum(slope * d_m + d_m * d_m / (2 * HEAD_RADIUS_M), 0.08)
    height = np.where(known, z_known, z_out).astype(np.float32)
    # shoulders: below the chin, behind the face on a torso's curve (the scanned neck stays as it is)
    chin_v = float(tex[CHIN, 1])
    nose_z = float(z_mesh[area].min())
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    cx = float((eye[0] - x0) * scale)
    below = (yy > chin_v) & ~known
    torso = nose_z + NECK_BEHIND_M + 0.04 * np.clip((yy - chin_v) / (0.15 * TEXELS_PER_M), 0, 1) \
        - 0.05 * np.sqrt(np.clip(1 - ((xx - cx) / (0.25 * TEXELS_PER_M)) ** 2, 0, 1))
    height = np.where(below, np.maximum(height, torso), height).astype(np.float32)
    # smooth everywhere, with one kernel: the mesh's flat triangles (about 1 cm) would otherwise shade as
    # facets, and two kernels meeting at the mesh's edge left a step there
    height = cv2.GaussianBlur(height, (0, 0), 4.0).astype(np.float32)
    # inner face: the mesh area, eroded by 8 % of its width
    k = max(3, int(0.08 * float(np.ptp(tex[:, 0]))) | 1)
    face = cv2.erode(area.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    half_w, half_h = gw / (2 * TEXELS_PER_M), gh / (2 * TEXELS_PER_M)

    def to_local(idx_or_pts) -> np.ndarray:
        p = cam[idx_or_pts]
        tx = texel_of(p)
        return np.stack([(tx[:, 0] + 0.5) / TEXELS_PER_M - half_w, (tx[:, 1] + 0.5) / TEXELS_PER_M - half_h,
                         p[:, 2] - t[2]], axis=1).astype(np.float32)

    lm = np.concatenate([to_local(list(EYE_RIGHT)).mean(0, keepdims=True), to_local(list(EYE_LEFT)).mean(0, keepdims=True),
                         to_local([NOSE_TIP]), to_local([MOUTH_RIGHT]), to_local([MOUTH_LEFT])])
    bottom = domain[-max(2, gh // 20):] > 0.5
    body = albedo[-max(2, gh // 20):][bottom].mean(axis=0) if bottom.any() else np.array([0.3, 0.3, 0.3], np.float32)
    yaw = math.degrees(math.atan2(-rot[2, 0], math.hypot(rot[0, 0], rot[1, 0])))
    return PersonCard(albedo, height, domain, face, area, half_w, half_h, lm, to_local(list(FACE_OVAL)),
                      body.astype(np.float32), yaw)


BORDER_BAND_M = (0.006, 0.014)  # where the mesh's outward slope is read: 6-14 mm inside its edge
MAX_SLOPE = 1.5  # metres away per metre outward, at most (about 56 degrees)


def _border_slope(z: np.ndarray, area: np.ndarray, step: int) -> np.ndarray:
    """How fast the mesh surface turns away from the camera as it nears its edge (metres of depth per
    metre outward, >= 0), read in a band just inside the edge and carried outward like the depth: the
    continuation then leaves the mesh at the angle the face has there, instead of starting flat."""
    inside = cv2.distanceTransform(area.astype(np.uint8), cv2.DIST_L2, 5)  # texels to the edge
    weight = cv2.GaussianBlur(area.astype(np.float32), (0, 0), 2.0)
    smooth = cv2.GaussianBlur(np.where(area, z, 0.0).astype(np.float32), (0, 0), 2.0) / np.maximum(weight, 1e-6)
    gy, gx = np.gradient(smooth)  # the mesh's own surface, not pulled toward the zeros outside it
    dy, dx = np.gradient(inside)
    norm = np.maximum(np.hypot(dx, dy), 1e-6)
    outward = -(gx * dx + gy * dy) / norm * TEXELS_PER_M  # dz per metre away from the mesh's interior
    lo, hi = (b * TEXELS_PER_M for b in BORDER_BAND_M)
    # only where the mesh's edge faces up (the forehead into the scalp): at the sides the head's
    # continuation keeps starting flat, as before, so ears and the wearer's head under a mask stay where they were
    upward = np.clip(dy / norm, 0.0, 1.0)  # 1 where "outward" is straight up (the distance grows downward)
    band = area & (inside >= lo) & (inside <= hi)
    if not band.any():
        return np.zeros_like(z)
    slope = np.where(band, np.clip(outward, 0.0, MAX_SLOPE) * upward, 0.0).astype(np.float32)
    filled = _inpaint16(slope / MAX_SLOPE * 65535.0, band, step) / 65535.0 * MAX_SLOPE
    return np.clip(filled, 0.0, MAX_SLOPE).astype(np.float32)


def _inpaint16(z: np.ndarray, known: np.ndarray, step: int) -> np.ndarray:
    """Fill unknown cells with the nearest known values' smooth continuation (coarse Telea inpaint)."""
    gh, gw = z.shape
    sw, sh = max(2, gw // step), max(2, gh // step)
    zs = cv2.resize(z, (sw, sh), interpolation=cv2.INTER_AREA)
    ks = cv2.resize(known.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    zs = np.where(ks > 0.5, zs / np.maximum(ks, 1e-6), 0)
    z8 = np.clip(zs / 256.0, 0, 255).astype(np.uint8)
    filled = cv2.inpaint(z8, (ks <= 0.5).astype(np.uint8), 5, cv2.INPAINT_TELEA).astype(np.float32) * 256.0
    return cv2.resize(filled, (gw, gh), interpolation=cv2.INTER_LINEAR)


def _decode(data: bytes, photo: Path) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"cannot decode photo {photo}")
    return image


def card_for(photo: Path, meshes_dir: Path, yunet_path: Path, segmenter, donor: Path | None = None,
             head: str = "mediapipe") -> PersonCard:
    """The cached card of ``photo`` (made and cached on first use) with the head shape ``head``
    (:data:`HEADS`, or ``morph-K``); with ``donor``, of the composite of the two photos (the donor's inner face on
    ``photo``'s head, :mod:`edge.capture.photo.composite`)."""
    # keyed by the mesh files, not the shape made from them: a cached card needs no alignment (seconds)
    meshes = b"".join(_read_bytes(m) for m in head_files(str(meshes_dir), head))
    meshes += head.encode() if is_morph(head) else b""  # morphs share their files
    data = Path(photo).read_bytes()
    extra = b"" if donor is None else Path(donor).read_bytes() + f"composite{COMPOSITE_VERSION}".encode()
    key = hashlib.sha256(data + extra + meshes + str(LIFT_VERSION).encode()).hexdigest()[:20]
    stem = Path(photo).stem if donor is None else f"{Path(photo).stem}~{Path(donor).stem}"
    stem += "" if head == "mediapipe" else f"@{head}"
    path = cache_dir() / f"{stem}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return PersonCard(z["albedo"], z["height"], z["domain"], z["face"], z["mesh_area"],
                                  float(z["half_w"]), float(z["half_h"]), z["landmarks_m"], z["outline_m"],
                                  z["body_bgr"], float(z["yaw_deg"]))
        except (OSError, KeyError, ValueError):
            path.unlink(missing_ok=True)
    image = _decode(data, photo)
    try:
        landmarks = _detect(image, yunet_path)
    except SourceError:
        raise SourceError(f"no face found in {photo}") from None
    if donor is not None:
        face = _decode(Path(donor).read_bytes(), donor)
        try:
            image = composite_face(image, landmarks, face, _detect(face, yunet_path))
            landmarks = _detect(image, yunet_path)  # the mesh is posed to the composite's own face
        except (SourceError, ValueError) as exc:
            raise SourceError(f"cannot make a composite of {photo} and {donor}: {exc}") from None
    shape = head_shape(str(meshes_dir), head)
    card = lift_photo(image, landmarks, segmenter.probability(image), shape.face, shape.head)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.partial.npz")
    np.savez(tmp, albedo=card.albedo, height=card.height, domain=card.domain, face=card.face,
             mesh_area=card.mesh_area, half_w=card.half_w, half_h=card.half_h, landmarks_m=card.landmarks_m,
             outline_m=card.outline_m, body_bgr=card.body_bgr, yaw_deg=card.yaw_deg)
    tmp.replace(path)
    return card
