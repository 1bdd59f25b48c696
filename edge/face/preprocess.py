"""``PreprocessConfig`` and the two functions every consumer calls: the one preprocessing path.

Training, calibration, evaluation and the live pipeline all turn an :class:`~edge.frames.RGBDFrame`
into a :class:`~edge.samples.FaceSample` through :func:`crop_and_normalise` with a
:class:`PreprocessConfig`. The config is stored inside the model artifact (``to_metadata``) and the
runtime rebuilds it from there (``from_metadata``), never from a second copy (DESIGN §2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from edge.errors import ConfigError, ModelError
from edge.face.crop import CropWindow, crop_color, crop_depth, crop_window
from edge.face.depth_norm import (
    DEPTH_MODES,
    INNER_REGIONS,
    NormalisedDepth,
    normalise_mad,
    normalise_passthrough,
    normalise_window,
)
from edge.face.detection_image import DEFAULT_DETECT_WIDTH_PX
from edge.face.finder import FaceFinder, primary_face
from edge.face.quality import estimate_pose, gate_reason, measure_relief_mm
from edge.face.tracker import FaceTracker
from edge.frames import RGBDFrame, raw_depth_mm
from edge.samples import FaceBox, FaceSample

METADATA_PREFIX = "preprocess."
METADATA_VERSION = "1"


@dataclass(frozen=True)
class PreprocessConfig:
    """Every parameter that shapes what a model sees. Change one and the model must be retrained."""

    # Model input side: 128 for the edge preset, 256 for the paper preset (DESIGN §4).
    size_px: int = 128
    # Crop side = 1.5 x the longer face-box side: YuNet's box spans brow to chin (~0.65 of the head),
    # so 1.5 x keeps the head outline and some background inside the crop, where the edges of masks
    # and cut-outs (DESIGN §8) show in depth.
    crop_scale: float = 1.5
    # Roll alignment off by default: the detector's landmarks jitter, and rotating every frame would
    # move that jitter into the crop.
    align_roll: bool = False
    depth_mode: str = "window"
    # ±100 mm around the face reference (DESIGN §3): holds a head's relief (~100 mm deep, canonical mesh)
    # and puts the background out of range.
    depth_window_mm: float = 100.0
    # n for median ± n·MAD (Idiap bob.pad.face auto_norm_image default n_sigma=3.0).
    mad_n: float = 3.0
    # The inner face region whose median depth is the reference: the central inner_fraction of the face
    # box in both directions ("box"), or the convex hull of the five landmarks ("landmarks").
    inner_region: str = "box"
    inner_fraction: float = 0.5
    # Relief patch radius as a fraction of the face-box width: 0.06 x ~150 mm ≈ 9 mm, inside the nose
    # (nasal width ~35 mm, Farkas, Anthropometry of the Head and Face, 1994).
    relief_patch_fraction: float = 0.06
    # Gates. 80 px: a 155 mm wide face (canonical mesh) at fx = 613 px (D435 colour at 640x480, the
    # shared recording's intrinsics) is 80 px wide at 1.19 m, beyond which D4xx depth error (∝ z²,
    # Intel "Tuning depth cameras for best performance") swamps the nose relief.
    min_face_width_px: float = 80.0
    # Half the face box: issue 4 requires 30 % holes to pass and 80 % to gate.
    min_valid_fraction: float = 0.5
    # 8 mm: flat targets read ~0 (plane fit in inverse depth), a live face ~36 mm (canonical mesh); 8 mm
    # is ~3 x the D435's RMS depth error at 0.9 m (Intel's formula: z²·0.08 px / (fx·baseline) ≈ 3 mm).
    min_relief_mm: float = 8.0
    # Past ~45° one eye is hidden and the five landmarks stop being a frontal face's.
    max_yaw_deg: float = 45.0
    max_pitch_deg: float = 40.0
    max_roll_deg: float = 45.0
    detect_width_px: int = DEFAULT_DETECT_WIDTH_PX

    def __post_init__(self) -> None:
        if not (isinstance(self.size_px, int) and self.size_px >= 8):
            raise ValueError(f"PreprocessConfig.size_px must be an int >= 8, got {self.size_px!r}")
        if self.depth_mode not in DEPTH_MODES:
            raise ValueError(f"PreprocessConfig.depth_mode must be one of {DEPTH_MODES}, got {self.depth_mode!r}")
        if self.inner_region not in INNER_REGIONS:
            raise ValueError(f"PreprocessConfig.inner_region must be one of {INNER_REGIONS}, got {self.inner_region!r}")
        for name in ("crop_scale", "depth_window_mm", "mad_n", "relief_patch_fraction", "max_yaw_deg",
                     "max_pitch_deg", "max_roll_deg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PreprocessConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.inner_fraction <= 1:
            raise ValueError(f"PreprocessConfig.inner_fraction must be in (0, 1], got {self.inner_fraction!r}")
        if not 0 <= self.min_valid_fraction <= 1:
            raise ValueError(f"PreprocessConfig.min_valid_fraction must be in [0, 1], got {self.min_valid_fraction!r}")
        if not isinstance(self.detect_width_px, int) or self.detect_width_px < 0:
            raise ValueError(f"PreprocessConfig.detect_width_px must be an int >= 0, got {self.detect_width_px!r}")

    def to_metadata(self) -> dict[str, str]:
        """String key/values for ONNX ``metadata_props`` and checkpoints; floats via repr (exact round trip)."""
        out = {METADATA_PREFIX + "version": METADATA_VERSION}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, float):
                text = repr(value)
            else:
                text = str(value)
            out[METADATA_PREFIX + field.name] = text
        return out

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> PreprocessConfig:
        """Rebuild from :meth:`to_metadata`'s keys; keys without the ``preprocess.`` prefix are ignored
        (an artifact carries other contracts beside this one). A missing, unknown or unparsable key
        is a :class:`ModelError`: the artifact does not say how its model was fed."""
        kinds = {field.name: field.type for field in dataclasses.fields(cls)}
        ours = {k[len(METADATA_PREFIX):]: v for k, v in metadata.items() if k.startswith(METADATA_PREFIX)}
        version = ours.pop("version", None)
        if version != METADATA_VERSION:
            raise ModelError(
                f"model metadata key '{METADATA_PREFIX}version' is {version!r}, this edgefas reads "
                f"{METADATA_VERSION!r}; re-export the model with this edgefas version"
            )
        for name in ours:
            if name not in kinds:
                raise ModelError(f"model metadata has unknown key '{METADATA_PREFIX}{name}'; "
                                 f"the model was made by another edgefas version, upgrade edgefas")
        values: dict[str, object] = {}
        for name, kind in kinds.items():
            key = METADATA_PREFIX + name
            if name not in ours:
                raise ModelError(f"model metadata lacks key '{key}'; re-export the model with this edgefas version")
            text = ours[name]
            try:
                if kind == "bool":
                    if text not in ("true", "false"):
                        raise ValueError(text)
                    values[name] = text == "true"
                elif kind == "int":
                    values[name] = int(text)
                elif kind == "float":
                    values[name] = float(text)
                else:
                    values[name] = text
            except ValueError:
                raise ModelError(f"model metadata key '{key}' has value {text!r}, not a {kind}; "
                                 f"the artifact is corrupt, re-export it") from None
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ModelError(f"model metadata holds an invalid preprocessing contract: {exc}") from None


def _check_face(face: FaceBox) -> None:
    if not isinstance(face, FaceBox):
        raise TypeError(f"face must be a FaceBox, got {type(face).__name__}")
    landmarks = face.landmarks_xy
    if not isinstance(landmarks, np.ndarray) or landmarks.shape != (5, 2):
        raise ValueError(f"FaceBox.landmarks_xy must be a 5 x 2 array, got {getattr(landmarks, 'shape', landmarks)}")
    coords = np.array([face.x0, face.y0, face.x1, face.y1], dtype=np.float64)
    if not (np.isfinite(coords).all() and np.isfinite(landmarks).all()):
        raise ValueError("FaceBox coordinates and landmarks_xy must be finite numbers")


def face_regions(window: CropWindow, face: FaceBox, config: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """(face box, inner region) as S x S bool masks in crop coordinates.

    The face box is taken axis-aligned around its mapped centre (after roll alignment the face is
    upright in the crop). ``inner`` is the central ``inner_fraction`` of it, or the landmark hull.
    """
    size = config.size_px
    (cx, cy), = window.map_points(np.array([face.center]))
    half_w, half_h = 0.5 * face.width * window.scale, 0.5 * face.height * window.scale
    centres = np.arange(size) + 0.5  # pixel centres, one axis; the masks are outer products
    dx, dy = np.abs(centres - cx)[np.newaxis, :], np.abs(centres - cy)[:, np.newaxis]
    region = (dx <= half_w) & (dy <= half_h)
    if config.inner_region == "box":
        f = config.inner_fraction
        inner = (dx <= f * half_w) & (dy <= f * half_h)
    else:
        hull = cv2.convexHull(np.round(window.map_points(face.landmarks_xy)).astype(np.int32))
        canvas = np.zeros((size, size), np.uint8)
        cv2.fillConvexPoly(canvas, hull, 1)
        inner = canvas.astype(bool)
    return region, inner


def crop_and_normalise(frame: RGBDFrame, face: FaceBox, config: PreprocessConfig) -> FaceSample:
    """The model's input for ``face`` in ``frame``, with the quality gates' verdict attached.

    Same window on colour and aligned depth; ``rgb`` 3 x S x S float32 in [0, 1] RGB order; ``depth``
    1 x S x S float32 in [0, 1] (nearer = brighter, 0 = no data).
    """
    if not isinstance(frame, RGBDFrame):
        raise TypeError(f"frame must be an RGBDFrame, got {type(frame).__name__}")
    if not isinstance(config, PreprocessConfig):
        raise TypeError(f"config must be a PreprocessConfig, got {type(config).__name__}")
    _check_face(face)
    window = crop_window(face, config.crop_scale, config.size_px, config.align_roll)
    color = crop_color(frame.color_bgr, window)
    rgb = np.ascontiguousarray(color[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
    depth_crop = crop_depth(frame.depth_raw, window)
    region, inner = face_regions(window, face, config)
    metric = config.depth_mode != "passthrough"
    relief = float("nan")
    normalised: NormalisedDepth
    if metric:
        depth_mm = raw_depth_mm(depth_crop, frame.depth_scale_m)
        if config.depth_mode == "window":
            normalised = normalise_window(depth_mm, inner, region, config.depth_window_mm)
        else:
            normalised = normalise_mad(depth_mm, inner, region, config.mad_n)
        relief = measure_relief_mm(depth_mm, window.map_points(face.landmarks_xy),
                                   config.relief_patch_fraction * face.width * window.scale)
    else:
        try:  # a uint16 crop of a 2-D frame can only fail the range: a camera's millimetres, not 8-bit depth
            normalised = normalise_passthrough(depth_crop, region)
        except ValueError:
            raise ConfigError(f"this model expects 8-bit pre-normalised depth (depth mode 'passthrough', as "
                              f"CASIA-SURF and CeFA ship it) but the frames carry metric depth (values up to "
                              f"{int(depth_crop.max())}); use a model trained with depth mode 'window' or 'mad' "
                              f"for a camera, a recording or a rendered source") from None
    gate = gate_reason(
        face.width, normalised.valid_fraction, estimate_pose(face.landmarks_xy), relief,
        min_face_width_px=config.min_face_width_px, min_valid_fraction=config.min_valid_fraction,
        max_yaw_deg=config.max_yaw_deg, max_pitch_deg=config.max_pitch_deg, max_roll_deg=config.max_roll_deg,
        min_relief_mm=config.min_relief_mm, relief_applies=metric,
    )
    return FaceSample(rgb=rgb, depth=normalised.depth01[np.newaxis], valid_fraction=normalised.valid_fraction,
                      reference_mm=normalised.reference_mm, face=face, gate=gate, relief_mm=relief)


def find_primary_face(frame: RGBDFrame, finder: FaceFinder,
                      tracker: FaceTracker | None = None) -> tuple[list[FaceBox], FaceBox | None]:
    """Every face found in the frame's colour (tracked, when a ``tracker`` is given, so ids stay
    stable while bystanders come and go) and the kiosk's primary one (None when none was found)."""
    boxes = finder.detect(frame.color_bgr)
    if tracker is not None:
        boxes = tracker.update(boxes)
    return boxes, primary_face(boxes, frame.color_bgr.shape)


def preprocess_frame(frame: RGBDFrame, finder: FaceFinder, config: PreprocessConfig,
                     tracker: FaceTracker | None = None) -> FaceSample | None:
    """Find faces, keep the kiosk's primary one, crop and normalise it; None when no face was found.

    With a ``tracker`` the sample's ``face.track_id`` is set. Build ``finder`` with
    ``config.detect_width_px``. The live pipeline takes the same two steps
    (:func:`find_primary_face`, :func:`crop_and_normalise`) and times each.
    """
    if not isinstance(frame, RGBDFrame):
        raise TypeError(f"frame must be an RGBDFrame, got {type(frame).__name__}")
    _, face = find_primary_face(frame, finder, tracker)
    if face is None:
        return None
    return crop_and_normalise(frame, face, config)
