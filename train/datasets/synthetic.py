"""``synthetic:COUNT[#PROTOCOL]``: the built-in world as a labelled training/evaluation set.

Splits use disjoint seed ranges, and a clip's seed is its subject, so no test subject is ever seen
in training. Each clip gives ``FRAMES_PER_CLIP`` moments a third of a second apart: poses and
lighting drift within a clip while the costly per-subject textures are made once.

Protocols: ``grandtest`` (every attack species in every split) and ``LOO_<species>`` (the species
is absent from train and dev and is the only attack in test, beside live faces); see
:func:`protocol_keeps`.
"""

from __future__ import annotations

from collections.abc import Iterator

from edge.capture.synthetic import ATTACKS, SyntheticWorld
from edge.errors import DatasetError
from train.datasets.records import RawSample

WORLD_ATTACKS = ATTACKS  # the species this world renders

SPLIT_SEED_BASE = {"train": 10_000_000, "dev": 20_000_000, "test": 30_000_000}
FRAMES_PER_CLIP = 4
FRAME_STEP = 10  # frames between the moments taken from one clip (1/3 s at 30 fps)
CLIP_CYCLE = ("live", "print", "live", "replay", "live", "mask", "live", "cutout")


def check_protocol(protocol: str) -> str:
    protocol = protocol or "grandtest"
    if protocol == "grandtest" or (protocol.startswith("LOO_") and protocol[4:] in ATTACKS):
        return protocol
    raise DatasetError(f"unknown synthetic protocol '{protocol}'; use grandtest or "
                       f"{', '.join('LOO_' + a for a in ATTACKS)}")


def protocol_keeps(protocol: str, split: str, pai: str) -> bool:
    """Whether a sample of species ``pai`` ("" = live) belongs to ``split`` under ``protocol``.

    Every protocol renders the same clips (so a cache of the grand test serves them all); a
    leave-one-out protocol only drops samples: the left-out species from train and dev, every
    other species from test.
    """
    if protocol in ("", "grandtest") or not pai:
        return True
    left_out = protocol[4:]
    return pai == left_out if split == "test" else pai != left_out


class SyntheticDataset:
    """``count`` frames of the synthetic world for one split (full frames; preprocessing follows)."""

    def __init__(self, count: int, split: str, protocol: str = "grandtest") -> None:
        if split not in SPLIT_SEED_BASE:
            raise ValueError(f"split must be one of {tuple(SPLIT_SEED_BASE)}, got {split!r}")
        if count < 1:
            raise DatasetError(f"synthetic dataset needs a positive COUNT, got {count}")
        self.count = count
        self.split = split
        self.protocol = check_protocol(protocol)
        self.spec = f"synthetic:{count}#{self.protocol}"

    def __len__(self) -> int:
        return self.count

    def describe(self) -> str:
        return f"synthetic split={self.split} protocol={self.protocol} frames={self.count}"

    def clip_seed(self, clip: int) -> int:
        return SPLIT_SEED_BASE[self.split] + clip

    def __iter__(self) -> Iterator[RawSample]:
        produced = 0
        clip = 0
        while produced < self.count:
            scenario = CLIP_CYCLE[clip % len(CLIP_CYCLE)]
            if not protocol_keeps(self.protocol, self.split, scenario if scenario != "live" else ""):
                clip += 1
                continue
            world = SyntheticWorld(scenario, self.clip_seed(clip))
            for k in range(FRAMES_PER_CLIP):
                if produced >= self.count:
                    return
                frame = world.frame(k * FRAME_STEP)
                truth = frame.truth
                yield RawSample(color_bgr=frame.color_bgr, depth=frame.depth_raw, depth_kind="mm", precropped=False,
                                label=truth.label, pai=truth.pai, pai_code=truth.pai, subject=str(truth.subject),
                                path=f"synthetic:{scenario} seed={world.seed} frame={k * FRAME_STEP}",
                                dataset="synthetic")
                produced += 1
            clip += 1


def open_synthetic_dataset(spec, split: str | None) -> SyntheticDataset:
    try:
        count = int(spec.argument)
    except ValueError:
        raise DatasetError(f"dataset spec '{spec.text}': COUNT must be a whole number, as in synthetic:2000") from None
    return SyntheticDataset(count, split or "train", spec.selector)
