"""Lift a real photograph of a person onto real head geometry: a textured relief card.

A :class:`PersonCard` is what the ray caster needs to draw the whole person from the photo in 3D:
the photo (albedo), the segmented person (domain: face, hair, ears, neck, shoulders), and a height
grid in metres. The face's height comes from MediaPipe's canonical face mesh (468 vertices, a real
average adult face, ``meshes/canonical_face_model.obj``) posed to the photo's five landmarks with
``cv2.solvePnP`` (rotation and translation: better than a similarity fit, which cannot turn the
mesh with a turned head). Outside the mesh the head continues from the mesh's border depth (and,
above the forehead, its slope: the forehead keeps turning away at the angle it has where the mesh
ends), then curves away like a sphere of head radius (hair a little behind the scalp, ears behind the
cheeks); below the chin the neck and shoulders stand behind the face on a torso's curve. Until LIFT_VERSION 5 the
continuation started flat, which left a crease along the mesh's top edge: lit from above it showed
as a bright seam across the forehead, like a mask's rim, strongest on tilted heads.

Scale: the mesh is life size (eye centres 6.3 cm apart), so the pose's distance over the assumed
focal length gives metres per photo pixel. Cards are cached per photo (``photo`` under the cache root,
:mod:`edge.cache`).
"""

from __future__ import annotations

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

LIFT_VERSION = 5  # 5: the continuation outside the mesh keeps the border's slope (no forehead crease)
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


def load_face_mesh(path: Path) -> FaceMesh:
    """The OBJ in centimetres, y up, z towards the viewer -> metres, y down, z away."""
    verts, tris = [], []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read face mesh {path} ({exc.strerror})") from None
    for line in lines:
        if line.startswith("v "):
            verts.append([float(t) for t in line.split()[1:4]])
        elif line.startswith("f "):
            tris.append([int(t.split("/")[0]) - 1 for t in line.split()[1:4]])
    v = np.asarray(verts, np.float32) * np.array([0.01, -0.01, -0.01], np.float32)
    return FaceMesh(v, np.asarray(tris, np.int32))


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


def lift_photo(image: np.ndarray, landmarks_px: np.ndarray, person_prob: np.ndarray, mesh: FaceMesh) -> PersonCard:
    """The card for one photo (BGR uint8), its five landmarks and its person probability map."""
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
    # outside the mesh: continue its border depth and outward slope (inpaint both), then curve away
    # with the distance from it
    z_known = np.where(area, z_mesh, 0.0).astype(np.float32)
    lo, hi = float(z_known[area].min()), float(z_known[area].max())
    z8 = np.where(area, (z_known - lo) / max(hi - lo, 1e-6) * 65535.0, 0).astype(np.float32)
    small = max(1, int(max(gw, gh) / 200))  # inpaint on a coarse grid: the far field is smooth anyway
    z_in = _inpaint16(z8, area, small)
    z_out = lo + z_in / 65535.0 * (hi - lo)
    dist_px = cv2.distanceTransform((~area).astype(np.uint8), cv2.DIST_L2, 5)
    d_m = dist_px / TEXELS_PER_M
    slope = _border_slope(z_known, area, small)
    z_out = z_out + np.minimum(slope * d_m + d_m * d_m / (2 * HEAD_RADIUS_M), 0.08)
    height = np.where(area, z_mesh, z_out).astype(np.float32)
    # neck and shoulders: below the chin, behind the face on a torso's curve
    chin_v = float(tex[CHIN, 1])
    nose_z = float(z_mesh[area].min())
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    cx = float((eye[0] - x0) * scale)
    below = (yy > chin_v) & ~area
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


def card_for(photo: Path, mesh_path: Path, yunet_path: Path, segmenter, donor: Path | None = None) -> PersonCard:
    """The cached card of ``photo`` (made and cached on first use); with ``donor``, of the composite
    of the two photos (the donor's inner face on ``photo``'s head, :mod:`edge.capture.photo.composite`)."""
    data = Path(photo).read_bytes()
    extra = b"" if donor is None else Path(donor).read_bytes() + f"composite{COMPOSITE_VERSION}".encode()
    key = hashlib.sha256(data + extra + mesh_path.read_bytes()[:4096] + str(LIFT_VERSION).encode()).hexdigest()[:20]
    stem = Path(photo).stem if donor is None else f"{Path(photo).stem}~{Path(donor).stem}"
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
    card = lift_photo(image, landmarks, segmenter.probability(image), load_face_mesh(mesh_path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.partial.npz")
    np.savez(tmp, albedo=card.albedo, height=card.height, domain=card.domain, face=card.face,
             mesh_area=card.mesh_area, half_w=card.half_w, half_h=card.half_h, landmarks_m=card.landmarks_m,
             outline_m=card.outline_m, body_bgr=card.body_bgr, yaw_deg=card.yaw_deg)
    tmp.replace(path)
    return card
