"""The real photographs the photo world is made of, who is in each, and which split a person is in.

The library is a folder laid out like the project's shared data: ``faces/people/manifest.csv``
(file, identity, face count per photo), ``faces/*.png`` portraits, ``meshes/canonical_face_model.obj``
and ``models/`` (YuNet). Its origin and terms are recorded beside the files; the product never
copies them. Only one-face photos are used, so every rendered person has one known identity.

Splits are by identity, never by photo: a person is in exactly one of train, dev and test, so a
test score is always about people the model never saw (the ``subject`` column is the identity).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from edge.errors import SourceError

DATA_ENV = "EDGEFAS_PHOTO_DATA"
SPLITS = ("train", "dev", "test")
# Share of photos each split aims for; identities are assigned whole, so the shares come out near these.
SPLIT_SHARE = {"train": 0.6, "dev": 0.2, "test": 0.2}
# Single portraits outside people/ (faces/README in the data folder names their origin): one photo each.
PORTRAITS = {"astronaut.png": "Eileen Collins", "sergey.png": "Sergey (MediaPipe test portrait)"}


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: str
    donor: Path | None = None  # a composite: the inner face comes from this photo (edge.capture.photo.composite)


@dataclass(frozen=True)
class PhotoLibrary:
    root: Path
    photos: tuple[Photo, ...]

    @property
    def model_dir(self) -> Path:
        return self.root / "models"

    def identities(self) -> tuple[str, ...]:
        return tuple(sorted({p.identity for p in self.photos}))

    def split_of(self) -> dict[str, str]:
        """identity -> split, deterministic: identities in sha256 order, each to the split furthest
        below its share of photos (a greedy fill), so the split of a person never depends on the
        order of the manifest or on which other photos were added later in another split."""
        counts: dict[str, int] = {}
        for p in self.photos:
            counts[p.identity] = counts.get(p.identity, 0) + 1
        total = sum(counts.values())
        filled = {s: 0 for s in SPLITS}
        out: dict[str, str] = {}
        for ident in sorted(counts, key=lambda i: hashlib.sha256(i.encode()).hexdigest()):
            split = min(SPLITS, key=lambda s: (filled[s] / total) - SPLIT_SHARE[s])
            out[ident] = split
            filled[split] += counts[ident]
        return out

    def photos_in(self, split: str) -> tuple[Photo, ...]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        which = self.split_of()
        return tuple(p for p in self.photos if which[p.identity] == split)

    def composites_in(self, split: str) -> tuple[Photo, ...]:
        """One composite per photo of ``split``: its head and body with the inner face of a photo of
        another person of the same split (chosen by a hash of the two names, so the pairs never
        depend on the manifest's order). Identity ``HEAD~DONOR``: a face no split holds, made only
        of people of this split. Paired once per library and split (every rendered clip asks)."""
        return _composites(self, split)


@functools.lru_cache(maxsize=16)
def _composites(library: PhotoLibrary, split: str) -> tuple[Photo, ...]:
    own = library.photos_in(split)
    out = []
    for head in own:
        donors = sorted((p for p in own if p.identity != head.identity),
                        key=lambda p: hashlib.sha256(f"{head.path.name}>{p.path.name}".encode()).hexdigest())
        if donors:
            out.append(Photo(head.path, f"{head.identity}~{donors[0].identity}", donors[0].path))
    return tuple(out)


def default_root() -> Path:
    """``$EDGEFAS_PHOTO_DATA``, else ``shared/data`` beside the project checkout (its layout in this repo)."""
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def open_library(root: Path | None = None) -> PhotoLibrary:
    root = Path(root) if root is not None else default_root()
    manifest = root / "faces" / "people" / "manifest.csv"
    if not manifest.is_file():
        raise SourceError(f"the photo world needs its photographs: {manifest} not found; set {DATA_ENV} to the "
                          f"folder holding faces/people/manifest.csv, meshes/ and models/")
    photos: list[Photo] = []
    with manifest.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("faces", "").strip() != "1":
                continue  # a photo of two people has no single identity to label it with
            path = manifest.parent / row["file"]
            if path.is_file():
                photos.append(Photo(path, row["identity"].strip()))
    for name, identity in PORTRAITS.items():
        if (root / "faces" / name).is_file():
            photos.append(Photo(root / "faces" / name, identity))
    if len({p.identity for p in photos}) < len(SPLITS):
        raise SourceError(f"{manifest}: the photo world needs photos of at least {len(SPLITS)} people, "
                          f"found {len(photos)} photos")
    return PhotoLibrary(root, tuple(sorted(photos, key=lambda p: p.path.name)))
