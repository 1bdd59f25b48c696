"""``photo:COUNT[#PROTOCOL]``: the photo world as a labelled training/evaluation set.

Splits are identity-disjoint (``edge.capture.photo.library``: a person is in exactly one split) and
use disjoint seed ranges; the ``subject`` column is the person's identity, the victim's for an
attack that shows another person's face. Each clip gives ``FRAMES_PER_CLIP`` moments a third of a
second apart. Protocols as for the procedural world: ``grandtest`` or ``LOO_<species>`` over the
photo world's nine species.
"""

from __future__ import annotations

from collections.abc import Iterator

from edge.capture.photo import PHOTO_ATTACKS, PhotoWorld
from edge.capture.photo.library import open_library
from edge.errors import DatasetError
from train.datasets.records import RawSample

WORLD_ATTACKS = PHOTO_ATTACKS  # the species this world renders

# Above the procedural world's ranges (10, 20, 30 million), so no clip of one world reuses a seed of the other.
SPLIT_SEED_BASE = {"train": 40_000_000, "dev": 50_000_000, "test": 60_000_000}
FRAMES_PER_CLIP = 2
FRAME_STEP = 10
CLIP_CYCLE = tuple(x for a in PHOTO_ATTACKS for x in ("live", a))


def check_protocol(protocol: str) -> str:
    protocol = protocol or "grandtest"
    if protocol == "grandtest" or (protocol.startswith("LOO_") and protocol[4:] in PHOTO_ATTACKS):
        return protocol
    raise DatasetError(f"unknown photo protocol '{protocol}'; use grandtest or "
                       f"{', '.join('LOO_' + a for a in PHOTO_ATTACKS)}")


def protocol_keeps(protocol: str, split: str, pai: str) -> bool:
    """As for the procedural world: LOO drops the species from train and dev and keeps only it in test."""
    if protocol in ("", "grandtest") or not pai:
        return True
    left_out = protocol[4:]
    return pai == left_out if split == "test" else pai != left_out


class PhotoDataset:
    """``count`` frames of the photo world for one split (full frames; preprocessing follows)."""

    def __init__(self, count: int, split: str, protocol: str = "grandtest") -> None:
        if split not in SPLIT_SEED_BASE:
            raise ValueError(f"split must be one of {tuple(SPLIT_SEED_BASE)}, got {split!r}")
        if count < 1:
            raise DatasetError(f"photo dataset needs a positive COUNT, got {count}")
        self.count = count
        self.split = split
        self.protocol = check_protocol(protocol)
        self.spec = f"photo:{count}#{self.protocol}"
        self.library = open_library()

    def __len__(self) -> int:
        return self.count

    def describe(self) -> str:
        people = sorted({p.identity for p in self.library.photos_in(self.split)})
        return f"photo split={self.split} protocol={self.protocol} frames={self.count} people={len(people)}"

    def __iter__(self) -> Iterator[RawSample]:
        produced = 0
        clip = 0
        while produced < self.count:
            scenario = CLIP_CYCLE[clip % len(CLIP_CYCLE)]
            if not protocol_keeps(self.protocol, self.split, scenario if scenario != "live" else ""):
                clip += 1
                continue
            seed = SPLIT_SEED_BASE[self.split] + clip
            world = PhotoWorld(scenario, seed, split=self.split, library=self.library)
            for k in range(FRAMES_PER_CLIP):
                if produced >= self.count:
                    return
                frame = world.frame(k * FRAME_STEP)
                truth = frame.truth
                yield RawSample(color_bgr=frame.color_bgr, depth=frame.depth_raw, depth_kind="mm", precropped=False,
                                label=truth.label, pai=truth.pai, pai_code=truth.pai, subject=str(truth.subject),
                                path=f"photo:{scenario} seed={seed} frame={k * FRAME_STEP}", dataset="photo")
                produced += 1
            clip += 1


def open_photo_dataset(spec, split: str | None) -> PhotoDataset:
    try:
        count = int(spec.argument)
    except ValueError:
        raise DatasetError(f"dataset spec '{spec.text}': COUNT must be a whole number, as in photo:2000") from None
    return PhotoDataset(count, split or "train", spec.selector)
