"""``photo:COUNT[#PROTOCOL]``: the photo world as a labelled training/evaluation set.

Splits are identity-disjoint (``edge.capture.photo.library``: a person is in exactly one split) and
use seed ranges disjoint from each other and from the procedural world's; the ``subject`` column
is the person's identity (the victim's for an attack that shows another person's face). Each clip
gives ``FRAMES_PER_CLIP`` moments a third of a second apart. Protocols: ``grandtest`` or
``LOO_<species>`` over the photo world's eight attack species.

``photomorph:COUNT[#PROTOCOL]`` is a training set only: the train split's people, each on one of the
scanned heads or of ``TRAIN_MORPHS`` heads morphed between the scans (``edge.capture.photo.lift``,
``morph-K``), so that no head shape is learned as part of "live". The morphs of evaluation
(``tools/novel_heads.py``) are other draws.

``photomix:COUNT[#PROTOCOL]`` is a training set only: the train split's people and as many
composite faces made from them (``edge.capture.photo.composite``), drawn half and half, from the
train split's seeds. Dev and test stay ``photo:`` (real people only), so every number that chooses
or reports a model is on photographs as they are.
"""

from __future__ import annotations

from edge.capture.photo import PHOTO_ATTACKS, PhotoWorld
from edge.capture.photo.library import open_library
from edge.capture.photo.lift import HEADS, MORPH_PREFIX
from edge.datasets import rendered
from edge.datasets.rendered import RenderedDataset, World, parse_count, protocol_keeps  # noqa: F401
from edge.errors import DatasetError

WORLD_ATTACKS = PHOTO_ATTACKS  # the species this world renders
# Bumped when the world renders other pixels for the same seed, so no cache made before is reused.
# 2: silicone masks bridge the eye sockets, stand 3-6 mm out and may leave the mouth open.
# 3: their skin is no longer blurred (a blur cue made blurred live faces look like masks).
# 4: nor flattened or tinted one way (those cues refused a darker-skinned test person 3x as often).
# 5: the head leaves the face mesh above the forehead without a crease (edge.capture.photo.lift, LIFT_VERSION 5).
# 6: each person's head shape is drawn from MediaPipe's canonical face and three ICT Face Model scans
#    (edge.capture.photo.lift.HEADS): a real head geometry per clip, not one average face for everyone.
# 7: the shared sensor's depth error is shared by neighbours and comes in disparity levels (procedural version 3).
# 8: a mannequin is painted (skin tones and plain plastics, features at the landmarks or none, matte to
#    glossy), no longer a tinted high-pass of the wearer's photo (edge.capture.photo.scene.mannequin_paint).
WORLD_VERSION = 8

# Above the procedural world's ranges (10, 20, 30 million), so no clip of one world reuses a seed of the other.
SPLIT_SEED_BASE = {"train": 40_000_000, "dev": 50_000_000, "test": 60_000_000}
FRAMES_PER_CLIP = 2
FRAME_STEP = 10
CLIP_CYCLE = tuple(x for a in PHOTO_ATTACKS for x in ("live", a))
TRAIN_MORPHS = 8  # photomorph's morphed heads: morph-0 .. morph-7 (evaluation uses draws from 1000 on)


def check_protocol(protocol: str) -> str:
    return rendered.check_protocol(protocol, PHOTO_ATTACKS, "photo")


class PhotoDataset(RenderedDataset):
    """``count`` frames of the photo world for one split; the library is opened once."""

    def __init__(self, count: int, split: str, protocol: str = "grandtest", composites: bool = False,
                 heads: tuple[str, ...] = HEADS, kind: str = "") -> None:
        library = open_library()
        kind = kind or ("photomix" if composites else "photo")
        world = World(kind, PHOTO_ATTACKS, SPLIT_SEED_BASE, CLIP_CYCLE, FRAMES_PER_CLIP, FRAME_STEP,
                      lambda scenario, seed, split_: PhotoWorld(scenario, seed, split=split_, library=library,
                                                                composites=composites, heads=heads))
        super().__init__(world, count, split, protocol)
        self.library = library
        self.composites = composites

    def describe(self) -> str:
        people = {p.identity for p in self.library.photos_in(self.split)}
        extra = f" composites={len(self.library.composites_in(self.split))}" if self.composites else ""
        return f"{super().describe()} people={len(people)}{extra}"


def open_photo_dataset(spec, split: str | None) -> PhotoDataset:
    return PhotoDataset(parse_count(spec, "photo:2000"), split or "train", spec.selector)


def open_photomorph_dataset(spec, split: str | None) -> PhotoDataset:
    if (split or "train") != "train":
        raise DatasetError(f"{spec.text}: photomorph is a training set (morphed heads); give the {split} "
                           f"split as photo:COUNT, e.g. --dev-dataset photo:1200")
    heads = HEADS + tuple(f"{MORPH_PREFIX}{k}" for k in range(TRAIN_MORPHS))
    return PhotoDataset(parse_count(spec, "photomorph:3000"), "train", spec.selector, heads=heads,
                        kind="photomorph")


def open_photomix_dataset(spec, split: str | None) -> PhotoDataset:
    if (split or "train") != "train":
        raise DatasetError(f"{spec.text}: photomix is a training set (composite faces); give the {split} "
                           f"split as photo:COUNT, e.g. --dev-dataset photo:1200")
    return PhotoDataset(parse_count(spec, "photomix:3000"), "train", spec.selector, composites=True)
