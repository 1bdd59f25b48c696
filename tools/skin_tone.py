"""The skin tone of the photo world's people, beside how often a model refuses each of them.

Skin tone as ITA, the individual typology angle (Chardon, Cretois and Hourseau, Int. J. Cosmet. Sci.
13, 1991): ``atan((L* - 50) / b*)`` in degrees, from skin's CIELAB lightness L* and yellowness b*. Its
six classes are those of Del Bino and Bernerd (Br. J. Dermatol. 169 s3, 2013): very light above 55,
light 41-55, intermediate 28-41, tan 10-28, brown -30-10, dark below -30.

Read on each single-person photograph's cheeks (two patches between the eye and the mouth corner on
each side, placed from the face finder's five landmarks), the median over a person's photographs. The
photographs were taken under unknown light and white balance, which move ITA by several degrees: the
class says which people the world has, not what any person's skin measures. With ``--read`` (a
``tools/robustness.py`` or ``tools/candidate_reads.py`` photo table) each person's refusals at the
stored threshold stand beside their tone:

    python tools/skin_tone.py --model-dir ../shared/data/models --read out/reads/x-test-photo.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.errors import EdgefasError  # noqa: E402

# Del Bino and Bernerd 2013: the lower bound (degrees) of each class, lightest first; below the last, dark
ITA_CLASSES = (("very light", 55.0), ("light", 41.0), ("intermediate", 28.0), ("tan", 10.0), ("brown", -30.0))
PATCH = 0.18  # a cheek patch's side, as a share of the distance between the eyes
OUTWARD = 0.12  # the patch's centre moved this share of the eye distance away from the nose (onto the cheek)


@dataclass(frozen=True)
class Person:
    identity: str
    split: str
    photos: int  # photographs with a face found
    ita: float  # median ITA over those photographs, degrees
    tone: str  # its class
    refused: int | None = None  # with --read: owners refused at the stored threshold, of ``scored``
    scored: int | None = None


def ita_degrees(lightness: float, b_star: float) -> float:
    """ITA of a CIELAB colour: 90 for a white at b* 0, falling as skin darkens or yellows."""
    return math.degrees(math.atan2(lightness - 50.0, b_star))


def ita_class(ita: float) -> str:
    for name, lower in ITA_CLASSES:
        if ita > lower:
            return name
    return "dark"


def cheek_patches(landmarks_xy: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Two squares (x0, y0, x1, y1) on the cheeks: midway between each eye and the mouth corner on its side,
    moved outward from the nose. Landmarks: right eye, left eye, nose tip, mouth right, mouth left."""
    eyes, nose, mouth = landmarks_xy[:2], landmarks_xy[2], landmarks_xy[3:5]
    span = float(np.linalg.norm(eyes[0] - eyes[1]))
    if not span > 0:
        raise ValueError("the two eye landmarks coincide: no cheek to read")
    half = 0.5 * PATCH * span
    out = []
    for eye, corner in zip(eyes, mouth):
        centre = 0.5 * (eye + corner)
        away = centre - nose
        centre = centre + OUTWARD * span * away / max(float(np.linalg.norm(away)), 1e-6)
        out.append((int(round(centre[0] - half)), int(round(centre[1] - half)),
                    int(round(centre[0] + half)) + 1, int(round(centre[1] + half)) + 1))
    return out


def skin_ita(image_bgr: np.ndarray, landmarks_xy: np.ndarray) -> float:
    """ITA of the median L* and b* of the cheek patches' pixels (sRGB, D65, as OpenCV converts floats)."""
    import cv2

    h, w = image_bgr.shape[:2]
    pixels = []
    for x0, y0, x1, y1 in cheek_patches(landmarks_xy):
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 > x0 and y1 > y0:
            pixels.append(image_bgr[y0:y1, x0:x1].reshape(-1, 3))
    if not pixels:
        raise ValueError("both cheek patches fall outside the image")
    patch = np.concatenate(pixels)[None].astype(np.float32) / 255.0
    lab = cv2.cvtColor(patch, cv2.COLOR_BGR2Lab)[0]
    return ita_degrees(float(np.median(lab[:, 0])), float(np.median(lab[:, 2])))


def refusals(read: Path) -> dict[str, tuple[int, int]]:
    """identity -> (refused, scored) of a photo table's clean copy."""
    try:
        table = json.loads(read.read_text())
        by_subject = table["clean"]["bpcer_by_subject"]
        return {name: (int(v["refused"]), int(v["scored"])) for name, v in by_subject.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgefasError(f"--read {read}: not a photo table with a clean copy's bpcer_by_subject ({exc}); "
                           "give a tools/robustness.py or tools/candidate_reads.py photo JSON") from None


def people(library, finder, read: dict[str, tuple[int, int]] | None = None) -> list[Person]:
    """Every person of ``library`` (an edge.capture.photo.library.PhotoLibrary) with their tone, by split."""
    import cv2

    from edge.capture.photo.library import SPLITS
    from edge.face.finder import primary_face

    split_of = library.split_of()
    readings: dict[str, list[float]] = {}
    for photo in library.photos:
        image = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
        if image is None:
            raise EdgefasError(f"{photo.path}: OpenCV cannot read this photograph")
        face = primary_face(finder.detect(image), image.shape)
        if face is not None:
            readings.setdefault(photo.identity, []).append(skin_ita(image, face.landmarks_xy))
    out = []
    for identity in sorted(split_of, key=lambda i: (SPLITS.index(split_of[i]), i)):
        values = readings.get(identity, [])
        ita = float(np.median(values)) if values else math.nan
        refused, scored = (read or {}).get(identity, (None, None))
        out.append(Person(identity, split_of[identity], len(values), ita,
                          ita_class(ita) if values else "no face found", refused, scored))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="folder holding faces/people/manifest.csv (default: the photo world's own)")
    parser.add_argument("--model-dir", type=Path, default=None, help="folder holding the YuNet model")
    parser.add_argument("--read", type=Path, default=None,
                        help="a photo table (tools/robustness.py JSON): each person's refusals beside their tone")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here too")
    args = parser.parse_args(argv)
    try:
        from edge.capture.photo.library import open_library
        from edge.face.finder import open_face_finder

        read = refusals(args.read) if args.read else None
        rows = people(open_library(args.data), open_face_finder("yunet", args.model_dir), read)
    except EdgefasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("| person | split | photos | ITA | tone | owners refused |")
    print("|---|---|---|---|---|---|")
    for p in rows:
        refused = "" if p.scored is None else f"{p.refused} of {p.scored} ({p.refused / max(p.scored, 1):.1%})"
        print(f"| {p.identity} | {p.split} | {p.photos} | {p.ita:.0f} | {p.tone} | {refused} |")
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
