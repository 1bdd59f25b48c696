"""Preprocessed face samples of a dataset, held in memory and cached on disk as one ``.npz``.

Every raw frame goes through the runtime's own preprocessing (``edge.face``): the same detector,
the same crop, the same depth normalisation the live path uses (DESIGN §2). Frames where the
detector finds no face are counted and dropped — at run time such a frame is "no face", never a
decision — so training sees exactly what the model will see in service.

Storage: colour as uint8 (it was 8-bit to begin with), normalised depth as uint16 (1/65535 steps,
far finer than the sensor's millimetre), so a 128 px sample costs 80 KiB.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.cache import cache_dir as cache_folder
from edge.datasets.records import RawSample
from edge.datasets.registry import open_dataset, parse_dataset_specs
from edge.errors import DatasetError
from edge.face.detection_image import DETECTION_GEOMETRY
from edge.face.finder import FaceFinder
from edge.face.preprocess import PreprocessConfig, crop_and_normalise, preprocess_frame
from edge.frames import Intrinsics, RGBDFrame
from edge.samples import FaceBox, FaceSample

DEPTH_SCALE = 65535.0
SAMPLE_FORMAT = 2  # 2: landmarks stored with the crops (a cache of format 1 lacks them and is rebuilt)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleSet:
    """N preprocessed faces with labels; ``is_attack`` is 1 for spoofs, 0 for live faces."""

    rgb: np.ndarray  # [N,3,S,S] uint8
    depth: np.ndarray  # [N,1,S,S] uint16, depth01 * 65535
    is_attack: np.ndarray  # [N] int8
    pai: np.ndarray  # [N] str, "" for live
    subject: np.ndarray  # [N] str
    gate: np.ndarray  # [N] str, "" when every quality gate passed
    provenance: dict = field(default_factory=dict)
    # [N,5,2] float32: the detector's five landmarks in crop coordinates [0, 1] (trace synthesis warps
    # one face's spoof trace onto another's geometry with them); None for sets made without them
    landmarks: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.is_attack.shape[0])

    @property
    def size_px(self) -> int:
        return int(self.rgb.shape[-1])

    def arrays(self, index: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs for the selected samples: float32 rgb [B,3,S,S] and depth [B,1,S,S] in [0, 1]."""
        rgb = self.rgb[index].astype(np.float32) * np.float32(1.0 / 255.0)
        depth = self.depth[index].astype(np.float32) * np.float32(1.0 / DEPTH_SCALE)
        return rgb, depth

    def worlds(self) -> np.ndarray:
        """Each face's world [N] str: the subject's prefix in a set that joins worlds (:func:`prepare_samples`
        gives it), else the kind of the one dataset the set was made from (``photomix`` of ``photomix:3000``)."""
        if "parts" in self.provenance:
            return np.char.partition(self.subject.astype(str), "/")[:, 0]
        return np.full(len(self), str(self.provenance.get("source", "")).partition(":")[0])

    def subset(self, keep: np.ndarray) -> SampleSet:
        return SampleSet(self.rgb[keep], self.depth[keep], self.is_attack[keep], self.pai[keep], self.subject[keep],
                         self.gate[keep], dict(self.provenance),
                         None if self.landmarks is None else self.landmarks[keep])


def protocol_subset(samples: SampleSet, keeps: Callable[[str], bool]) -> SampleSet:
    """The samples of the species ``keeps(pai)`` accepts ("" = live), and only their faces not found:
    a species the protocol drops is no part of its non-response either (train.evaluate.non_response)."""
    out = samples.subset(np.array([keeps(str(p)) for p in samples.pai], bool))
    missed = out.provenance.get("missed_by_pai")
    if missed is not None:
        kept = {k: n for k, n in missed.items() if k == "live" or keeps(k)}
        out.provenance["missed_by_pai"] = kept
        out.provenance["missed_spoof"] = sum(int(n) for k, n in kept.items() if k != "live")
    return out


def box_for_precropped(width: int, height: int) -> FaceBox:
    """A pre-cropped face fills its image; landmarks at the Haar module's fixed box proportions."""
    from edge.face.haar import BOX_LANDMARKS

    pts = np.asarray(BOX_LANDMARKS, np.float32) * np.array([width, height], np.float32)
    return FaceBox(0.0, 0.0, float(width), float(height), 1.0, pts, "precropped")


def preprocess_raw(raw: RawSample, finder: FaceFinder, config: PreprocessConfig) -> FaceSample | None:
    """One dataset frame through the runtime's preprocessing; None when no face was found."""
    if raw.precropped:
        if raw.depth_kind != "normalised8" and config.depth_mode == "passthrough":
            raise DatasetError(f"{raw.path}: pass-through depth needs 8-bit normalised crops")
        h, w = raw.color_bgr.shape[:2]
        depth = raw.depth
        if depth.shape != (h, w):
            import cv2

            depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
        if config.depth_mode != "passthrough":
            raise DatasetError(f"{raw.path}: pre-cropped 8-bit depth needs a model whose preprocessing uses "
                               f"depth_mode=passthrough (this one uses {config.depth_mode})")
        frame = _frame(raw.color_bgr, depth.astype(np.uint16), raw.path)
        return crop_and_normalise(frame, box_for_precropped(w, h), config)
    return preprocess_frame(_frame(raw.color_bgr, raw.depth, raw.path), finder, config)


def _frame(color: np.ndarray, depth: np.ndarray, path: str) -> RGBDFrame:
    h, w = color.shape[:2]
    intr = Intrinsics(640, 480, 613.2, 613.2, 320.0, 240.0).scaled(w, h)  # unused by preprocessing
    return RGBDFrame(color, depth, 0.001, intr, 0.0, 0, path)


@dataclass(frozen=True)
class BuildStats:
    frames: int
    faces: int
    missed_live: int
    missed_spoof: int


def build_sample_set(raws: Iterable[RawSample], finder: FaceFinder, config: PreprocessConfig, source: str,
                     on_frame: Callable[[int], None] | None = None) -> tuple[SampleSet, BuildStats]:
    """Preprocess every frame of ``raws``; faces the detector misses are counted, not kept."""
    from edge.face.crop import crop_window

    rgb, depth, attack, pai, subject, gate, landmarks = [], [], [], [], [], [], []
    missed_by_pai: dict[str, int] = {}
    frames = missed_live = missed_spoof = 0
    for raw in raws:
        frames += 1
        sample = preprocess_raw(raw, finder, config)
        if on_frame is not None:
            on_frame(frames)
        if sample is None:
            missed_by_pai[raw.pai or "live"] = missed_by_pai.get(raw.pai or "live", 0) + 1
            if raw.label == "live":
                missed_live += 1
            else:
                missed_spoof += 1
            continue
        rgb.append(np.rint(sample.rgb * 255.0).astype(np.uint8))
        depth.append(np.rint(sample.depth * DEPTH_SCALE).astype(np.uint16))
        attack.append(1 if raw.label == "spoof" else 0)
        pai.append(raw.pai)
        subject.append(raw.subject)
        gate.append(sample.gate or "")
        window = crop_window(sample.face, config.crop_scale, config.size_px, config.align_roll)
        landmarks.append(window.map_points(sample.face.landmarks_xy) / np.float32(config.size_px))
    if not rgb:
        raise DatasetError(f"{source}: no face was found in any of its {frames} frames; check the dataset and the "
                           f"face detector (`edgefas faces`)")
    s = config.size_px
    provenance = {"source": source, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "contract": config.to_metadata(), "detector": getattr(finder, "name", "?"),
                  "frames": frames, "missed_live": missed_live, "missed_spoof": missed_spoof,
                  "missed_by_pai": missed_by_pai}
    out = SampleSet(np.stack(rgb).reshape(-1, 3, s, s), np.stack(depth).reshape(-1, 1, s, s),
                    np.asarray(attack, np.int8), np.asarray(pai, dtype=str), np.asarray(subject, dtype=str),
                    np.asarray(gate, dtype=str), provenance, np.asarray(landmarks, np.float32).reshape(-1, 5, 2))
    return out, BuildStats(frames, len(rgb), missed_live, missed_spoof)


def save_sample_set(samples: SampleSet, path: Path) -> Path:
    """Write atomically (temporary name, then rename): an interrupted run leaves no half file. The temporary
    name is the process's own: the ranks of a torchrun job on a cold cache write the same set at once, and a
    shared name let one rank rename the other's file away mid-write (tests/train/test_ddp_site_dataset.py)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial.npz")
    digest = hashlib.sha256(samples.rgb.tobytes() + samples.depth.tobytes()).hexdigest()
    prov = dict(samples.provenance, sha256=digest)
    extra = {} if samples.landmarks is None else {"landmarks": samples.landmarks}
    np.savez_compressed(tmp, rgb=samples.rgb, depth=samples.depth, is_attack=samples.is_attack, pai=samples.pai,
                        subject=samples.subject, gate=samples.gate, provenance=np.array(json.dumps(prov)), **extra)
    tmp.replace(path)
    return path


def load_sample_set(path: Path) -> SampleSet:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return SampleSet(z["rgb"], z["depth"], z["is_attack"], z["pai"], z["subject"], z["gate"],
                             json.loads(str(z["provenance"])), z["landmarks"] if "landmarks" in z.files else None)
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"cannot read sample set '{path}' ({exc}); delete it to rebuild") from None


def folder_fingerprint(folder: Path) -> str:
    """What a ``folder:`` dataset holds, cheaply: its labels.csv's sha256 and the newest change time of
    any file under it (a rebuilt or edited dataset changes one of them). Empty when there is no labels.csv
    (the reader refuses such a folder with its own message)."""
    labels = folder / "labels.csv"
    if not labels.is_file():
        return ""
    newest = max((entry.stat().st_mtime_ns for entry in folder.rglob("*") if entry.is_file()), default=0)
    return f"{hashlib.sha256(labels.read_bytes()).hexdigest()}:{newest}"


def cache_path(cache_dir: Path, spec: str, split: str, config: PreprocessConfig, detector: str) -> Path:
    """Where the preprocessed samples of (spec, split) under this contract and detector are kept."""
    kind = spec.partition(":")[0]
    key = [spec, split, config.to_metadata(), detector, DETECTION_GEOMETRY, SAMPLE_FORMAT]
    if kind in RENDERED_PROTOCOLS:  # a rendered world that draws differently makes other samples
        key.append(importlib.import_module(RENDERED_PROTOCOLS[kind]).WORLD_VERSION)
    if kind == "folder":  # a folder rebuilt or relabelled at the same path holds other samples
        key.append(folder_fingerprint(Path(spec.partition(":")[2].partition("#")[0])))
    key = json.dumps(key, sort_keys=True)
    return Path(cache_dir) / f"{kind}-{split}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"


def concatenate(sets: list[SampleSet], source: str) -> SampleSet:
    """One sample set from several (subjects keep their world's prefix, so two worlds never share one)."""
    if len(sets) == 1:
        return sets[0]
    landmarks = None if any(x.landmarks is None for x in sets) else np.concatenate([x.landmarks for x in sets])
    return SampleSet(np.concatenate([x.rgb for x in sets]), np.concatenate([x.depth for x in sets]),
                     np.concatenate([x.is_attack for x in sets]), np.concatenate([x.pai for x in sets]),
                     np.concatenate([x.subject for x in sets]), np.concatenate([x.gate for x in sets]),
                     {"source": source, "parts": [x.provenance for x in sets]}, landmarks)


# Rendered worlds whose protocols only drop samples, so every protocol shares the grand test's cache.
RENDERED_PROTOCOLS = {"synthetic": "edge.datasets.synthetic", "photo": "edge.datasets.photo",
                      "photomix": "edge.datasets.photo", "photomorph": "edge.datasets.photo"}


def cached_samples(path: Path, open_frames: Callable[[], Iterable[RawSample]], finder: FaceFinder,
                   config: PreprocessConfig, source: str, split: str,
                   on_frame: Callable[[int, int], None] | None = None) -> SampleSet:
    """The samples cached at ``path``, or those of the frames ``open_frames()`` gives (opened only on a
    miss), preprocessed and cached there."""
    if path.is_file():
        samples = load_sample_set(path)
        log.info("samples=%s split=%s from cache %s (%d faces)", source, split, path, len(samples))
        return samples
    frames = open_frames()
    total = len(frames)
    samples, stats = build_sample_set(frames, finder, config, source,
                                      on_frame=(lambda i: on_frame(i, total)) if on_frame else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_sample_set(samples, path)
    log.info("samples=%s split=%s frames=%d faces=%d missed live=%d spoof=%d cached at %s", source, split,
             stats.frames, stats.faces, stats.missed_live, stats.missed_spoof, path)
    return samples


def prepare_samples(spec: str, split: str, config: PreprocessConfig, detector: str, model_dir: Path | None,
                    cache_dir: Path | None = None, on_frame: Callable[[int, int], None] | None = None) -> SampleSet:
    """Preprocessed samples of (spec, split), from the cache when the same contract made them before.

    ``spec`` may join several datasets with ``+`` (``synthetic:4000+photo:4000``): each part is
    prepared and cached on its own and the parts are concatenated, subjects prefixed by their kind.
    ``cache_dir`` None is the ``samples`` folder under the one cache root (:mod:`edge.cache`).
    This is the one path from a dataset spec to model inputs: training, evaluation and threshold
    calibration all take their faces from here.
    """
    if cache_dir is None:
        cache_dir = cache_folder("samples")
    parts = [p.text for p in parse_dataset_specs(spec)]  # every part checked before any is rendered or read
    if len(parts) > 1:
        sets = []
        for part in parts:
            one = prepare_samples(part, split, config, detector, model_dir, cache_dir, on_frame)
            kind = part.partition(":")[0]
            sets.append(SampleSet(one.rgb, one.depth, one.is_attack, one.pai,
                                  np.char.add(f"{kind}/", one.subject.astype(str)), one.gate, one.provenance,
                                  one.landmarks))
        return concatenate(sets, spec)
    from edge.face.finder import open_face_finder

    finder = open_face_finder(detector, model_dir, config.detect_width_px)
    protocol = ""
    base_spec = spec
    kind = spec.partition(":")[0]
    if kind in RENDERED_PROTOCOLS and "#" in spec:
        base_spec, _, protocol = spec.partition("#")  # every protocol of a rendered world shares its grand test's frames
    if protocol:  # checked before anything is rendered or read: a mistyped protocol costs nothing

        module = importlib.import_module(RENDERED_PROTOCOLS[kind])
        if protocol.startswith("LOO_") and protocol[4:] not in module.WORLD_ATTACKS:
            # a species this world does not have: nothing to leave out of train/dev, nothing to test
            if split == "test":
                raise DatasetError(f"{spec}: '{protocol[4:]}' is not an attack of the {kind} world "
                                   f"({', '.join(module.WORLD_ATTACKS)})")
            protocol = "grandtest"
        protocol = module.check_protocol(protocol)
    samples = cached_samples(cache_path(cache_dir, base_spec, split, config, finder.name),
                             lambda: open_dataset(base_spec, split), finder, config, base_spec, split, on_frame)
    if protocol:
        samples = protocol_subset(samples, lambda pai: module.protocol_keeps(protocol, split, pai))
    if samples.is_attack.min() == samples.is_attack.max():
        raise DatasetError(f"{spec} split {split} holds only {'attacks' if samples.is_attack[0] else 'live faces'}; "
                           f"training and calibration need both")
    return samples
