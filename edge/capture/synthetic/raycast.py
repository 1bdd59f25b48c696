"""Ray casting of textured relief surfaces for the synthetic RGB-D world.

Every object in the scene is a :class:`Surface`: a rectangle in its own frame whose front is lifted
by a height grid (a face, a mask), bent (paper) or flat (a screen, a wall). A camera ray meets it
where ``z_local = height(x_local, y_local)``; that is solved by a few fixed-point steps per pixel,
which converge for the gentle slopes these objects have when seen from the front. Everything is
vectorised numpy + OpenCV ``remap``; one 640x480 view costs a few tens of milliseconds. The static
room is cast and shaded once per scene and the moving surfaces are cast in front of it (``behind=``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.frames import Intrinsics

MATERIAL_BACKGROUND, MATERIAL_SKIN, MATERIAL_PAPER = 0, 1, 3  # 2 was hair, now part of the skin surfaces
MATERIAL_SCREEN, MATERIAL_MASK, MATERIAL_CLOTH, MATERIAL_CLUTTER = 4, 5, 6, 7


@dataclass
class Surface:
    """A textured patch of the scene. Grids cover ``[-half_w, half_w] x [-half_h, half_h]`` (metres).

    ``rotation`` maps local to camera coordinates; the local +z axis points away from the camera
    when the surface faces it. ``domain`` (1 = solid) cuts holes and outlines; ``emissive``
    surfaces (screens) show their albedo regardless of the scene light.
    """

    name: str
    center: np.ndarray
    rotation: np.ndarray
    half_w: float
    half_h: float
    albedo: np.ndarray  # H x W x 3 float32 BGR in [0, 1]
    material: int
    height: np.ndarray | None = None  # H x W float32 metres, negative = nearer
    bend: float = 0.0  # extra height bend * x^2 (1/m): paper held curved
    domain: np.ndarray | None = None  # H x W float32, > 0.5 = solid
    face_region: np.ndarray | None = None  # H x W bool: the inner face shown by this surface
    specular: float = 0.05
    shininess: float = 10.0
    emissive: bool = False
    depth_dropout: float = 0.0  # extra probability that the depth sensor gets no return here
    moire_pitch_m: float = 0.0  # screens: sub-pixel pitch whose aliasing produces moiré
    _normals: np.ndarray | None = field(default=None, repr=False)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self.albedo.shape[:2]

    def normals(self) -> np.ndarray:
        """Local-frame unit normals facing the camera (H x W x 3), from the height grid."""
        if self._normals is None:
            gh, gw = self.grid_shape
            if self.height is None:
                n = np.zeros((gh, gw, 3), np.float32)
                n[..., 2] = -1.0
            else:
                dx = 2 * self.half_w / gw
                dy = 2 * self.half_h / gh
                hx = cv2.Sobel(self.height, cv2.CV_32F, 1, 0, ksize=3) / (8 * dx)
                hy = cv2.Sobel(self.height, cv2.CV_32F, 0, 1, ksize=3) / (8 * dy)
                n = np.dstack([hx, hy, -np.ones_like(hx)])
                n /= np.linalg.norm(n, axis=2, keepdims=True)
            self._normals = n.astype(np.float32)
        return self._normals


@dataclass
class Hits:
    """Nearest surface per pixel for one camera."""

    z: np.ndarray  # H x W float32 metres along the camera's z; inf = nothing hit
    surface: np.ndarray  # H x W int16, index into the surface list, -1 = none
    gx: np.ndarray  # H x W float32 texel column in that surface's grids
    gy: np.ndarray  # H x W float32 texel row
    local_x: np.ndarray  # H x W float32 metres in the surface frame
    dirs: np.ndarray  # H x W x 3 float32 ray directions (z = 1)


def pixel_rays(intr: Intrinsics) -> np.ndarray:
    u = (np.arange(intr.width, dtype=np.float32) - intr.ppx) / intr.fx
    v = (np.arange(intr.height, dtype=np.float32) - intr.ppy) / intr.fy
    uu, vv = np.meshgrid(u, v)
    return np.dstack([uu, vv, np.ones_like(uu)])


def project(points: np.ndarray, intr: Intrinsics, origin: np.ndarray) -> np.ndarray:
    """Project N x 3 camera-frame points seen from ``origin`` to N x 2 pixels."""
    p = points - origin
    z = np.maximum(p[:, 2], 1e-6)
    return np.stack([p[:, 0] / z * intr.fx + intr.ppx, p[:, 1] / z * intr.fy + intr.ppy], axis=1)


def _bbox(surface: Surface, intr: Intrinsics, origin: np.ndarray) -> tuple[int, int, int, int] | None:
    zlo, zhi = -0.02, 0.02
    if surface.height is not None:
        zlo, zhi = float(surface.height.min()) - 0.01, float(surface.height.max()) + 0.01
    zb = abs(surface.bend) * max(surface.half_w, surface.half_h) ** 2
    corners = np.array([[sx * surface.half_w, sy * surface.half_h, z]
                        for sx in (-1, 1) for sy in (-1, 1) for z in (zlo - zb, zhi + zb)], np.float32)
    world = corners @ surface.rotation.T + surface.center
    if np.any(world[:, 2] - origin[2] <= 0.05):
        return (0, 0, intr.width, intr.height)
    px = project(world, intr, origin)
    x0, y0 = np.floor(px.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(px.max(axis=0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, intr.width), min(y1, intr.height)
    if x0 >= x1 or y0 >= y1:
        return None
    return (int(x0), int(y0), int(x1), int(y1))


def cast(surfaces: list[Surface], intr: Intrinsics, origin: tuple[float, float, float],
         iterations: int = 6, behind: Hits | None = None, first_index: int = 0) -> Hits:
    """Find the nearest surface under every pixel of a camera at ``origin`` (colour frame).

    ``behind`` is an earlier cast of other surfaces from the same camera (the static room, cast
    once per scene); these surfaces are cast in front of it and numbered from ``first_index``, so
    the two lists must not share numbers. The result equals one cast of both lists together.
    """
    o = np.asarray(origin, np.float32)
    h, w = intr.height, intr.width
    if behind is None:
        dirs = pixel_rays(intr)
        z = np.full((h, w), np.inf, np.float32)
        sid = np.full((h, w), -1, np.int16)
        gx = np.zeros((h, w), np.float32)
        gy = np.zeros((h, w), np.float32)
        lx = np.zeros((h, w), np.float32)
    else:
        dirs = behind.dirs  # read only
        z, sid, gx, gy, lx = (a.copy() for a in (behind.z, behind.surface, behind.gx, behind.gy, behind.local_x))
    for index, s in enumerate(surfaces, start=first_index):
        box = _bbox(s, intr, o)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        d = dirs[y0:y1, x0:x1]
        rt = s.rotation.T.astype(np.float32)
        o_l = rt @ (o - s.center.astype(np.float32))
        d_l = d @ rt.T
        dz = np.where(np.abs(d_l[..., 2]) < 1e-6, 1e-6, d_l[..., 2])
        gh, gw = s.grid_shape
        sx, sy = gw / (2 * s.half_w), gh / (2 * s.half_h)
        zl = np.zeros(d.shape[:2], np.float32)
        steps = iterations if (s.height is not None or s.bend) else 1
        for _ in range(steps):
            t = (zl - o_l[2]) / dz
            xl = o_l[0] + t * d_l[..., 0]
            yl = o_l[1] + t * d_l[..., 1]
            if s.height is None and not s.bend:
                break
            zl_new = np.zeros_like(zl)
            if s.height is not None:
                mx = (xl + s.half_w) * sx - 0.5
                my = (yl + s.half_h) * sy - 0.5
                zl_new = cv2.remap(s.height, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            if s.bend:
                zl_new = zl_new + s.bend * xl * xl
            zl = 0.5 * zl + 0.5 * zl_new if _ > 2 else zl_new  # damping near the end settles silhouettes
        t = (zl - o_l[2]) / dz
        xl = o_l[0] + t * d_l[..., 0]
        yl = o_l[1] + t * d_l[..., 1]
        mx = (xl + s.half_w) * sx - 0.5
        my = (yl + s.half_h) * sy - 0.5
        hit = (np.abs(xl) < s.half_w) & (np.abs(yl) < s.half_h) & (t > 0.05)
        if s.domain is not None:
            dom = cv2.remap(s.domain, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            hit &= dom > 0.5
        depth = t  # rays have z = 1, so the ray parameter is the depth along the camera axis
        zr = z[y0:y1, x0:x1]
        win = hit & (depth < zr)
        zr[win] = depth[win]
        sid[y0:y1, x0:x1][win] = index
        gx[y0:y1, x0:x1][win] = mx[win]
        gy[y0:y1, x0:x1][win] = my[win]
        lx[y0:y1, x0:x1][win] = xl[win]
    return Hits(z=z, surface=sid, gx=gx, gy=gy, local_x=lx, dirs=dirs)


@dataclass
class Shaded:
    radiance: np.ndarray  # H x W x 3 float32 BGR, display-referred, before exposure and noise
    albedo_luma: np.ndarray  # H x W float32, what the surface reflects (dark surfaces starve depth)
    dropout: np.ndarray  # H x W float32 extra depth-dropout probability (glare, gloss)
    face_mask: np.ndarray  # H x W bool
    material: np.ndarray  # H x W uint8


def shade(hits: Hits, surfaces: list[Surface], light_dir: np.ndarray, ambient: float,
          light_bgr: np.ndarray, behind: Shaded | None = None, first_index: int = 0) -> Shaded:
    """Lambert + Blinn-Phong shading of the nearest surfaces; emissive surfaces glow on their own.

    With ``behind`` (the shading of an earlier cast that ``hits`` was cast in front of, under the
    same light), only ``surfaces``, numbered from ``first_index``, are shaded; every other pixel
    keeps its shading from ``behind``.
    """
    h, w = hits.z.shape
    if behind is None:
        rad = np.zeros((h, w, 3), np.float32)
        luma = np.zeros((h, w), np.float32)
        drop = np.zeros((h, w), np.float32)
        face = np.zeros((h, w), bool)
        mat = np.zeros((h, w), np.uint8)
    else:
        rad, luma, drop, face, mat = (a.copy() for a in (behind.radiance, behind.albedo_luma, behind.dropout,
                                                         behind.face_mask, behind.material))
    L = (light_dir / np.linalg.norm(light_dir)).astype(np.float32)
    for index, s in enumerate(surfaces, start=first_index):
        sel = hits.surface == index
        if not sel.any():
            continue
        gh, gw = s.grid_shape
        ix = np.clip(hits.gx[sel] + 0.5, 0, gw - 1).astype(np.int32)
        iy = np.clip(hits.gy[sel] + 0.5, 0, gh - 1).astype(np.int32)
        alb = s.albedo[iy, ix]
        if s.height is None and not s.bend:
            n = np.broadcast_to(s.rotation.astype(np.float32) @ np.array([0, 0, -1], np.float32), alb.shape)
        else:
            n_l = s.normals()[iy, ix]
            if s.bend:
                n_l = n_l.copy()
                n_l[:, 0] += 2 * s.bend * hits.local_x[sel]
                n_l /= np.sqrt((n_l * n_l).sum(axis=1, keepdims=True))
            n = n_l @ s.rotation.T.astype(np.float32)
        if s.emissive:
            col = alb.copy()
            if s.moire_pitch_m:
                # sampling a fine sub-pixel grid at camera resolution aliases into moiré bands
                phase = (hits.gx[sel] * (2 * s.half_w / gw) + 0.37 * hits.gy[sel] * (2 * s.half_h / gh))
                col *= (1.0 + 0.10 * np.cos(2 * np.pi * phase / s.moire_pitch_m))[:, None]
        else:
            diff = np.clip(n @ L, 0.0, None)
            col = alb * (ambient + (1.0 - ambient) * diff[:, None] * light_bgr)
        if s.specular >= 0.05:
            v = -hits.dirs[sel]
            half = L + v / np.sqrt((v * v).sum(axis=1, keepdims=True))
            half /= np.sqrt((half * half).sum(axis=1, keepdims=True))
            spec = s.specular * np.clip((n * half).sum(axis=1), 0.0, 1.0) ** s.shininess
            col = col + spec[:, None] * light_bgr
            drop[sel] = s.depth_dropout + np.clip(spec - 0.25, 0.0, 1.0) * 2.0
        else:
            drop[sel] = s.depth_dropout
        rad[sel] = col
        luma[sel] = alb.mean(axis=1)
        mat[sel] = s.material
        face[sel] = s.face_region[iy, ix] if s.face_region is not None else False
    return Shaded(radiance=rad, albedo_luma=luma, dropout=drop, face_mask=face, material=mat)
