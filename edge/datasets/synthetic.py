"""``synthetic:COUNT[#PROTOCOL]``: the built-in procedural world as a labelled training/evaluation set.

A clip's seed is its subject, so with the disjoint split seed ranges (``edge.datasets.rendered``)
no test subject is ever seen in training. Each clip gives ``FRAMES_PER_CLIP`` moments a third of a
second apart: poses and lighting drift within a clip while the costly per-subject textures are
made once. Protocols: ``grandtest`` or ``LOO_<species>``.
"""

from __future__ import annotations

from edge.capture.synthetic import ATTACKS, SyntheticWorld
from edge.datasets import rendered
from edge.datasets.rendered import RenderedDataset, World, parse_count, protocol_keeps  # noqa: F401

WORLD_ATTACKS = ATTACKS  # the species this world renders
WORLD_VERSION = 3  # bumped when the world renders other pixels for the same seed (no cache made before is reused)
# 3: depth error shared by neighbours and depth in disparity levels, per-clip sensor unit
#    (edge.capture.synthetic.sensor.DepthUnit), as the shared D435 recording has; 2: independent per pixel
# 2: heads 60-75 mm deep (edge.capture.synthetic.head), as real head meshes are; 1: 45-56 mm

SPLIT_SEED_BASE = {"train": 10_000_000, "dev": 20_000_000, "test": 30_000_000}
FRAMES_PER_CLIP = 4
FRAME_STEP = 10  # frames between the moments taken from one clip (1/3 s at 30 fps)
CLIP_CYCLE = ("live", "print", "live", "replay", "live", "mask", "live", "cutout")
WORLD = World("synthetic", ATTACKS, SPLIT_SEED_BASE, CLIP_CYCLE, FRAMES_PER_CLIP, FRAME_STEP,
              lambda scenario, seed, split: SyntheticWorld(scenario, seed))


def check_protocol(protocol: str) -> str:
    return rendered.check_protocol(protocol, ATTACKS, "synthetic")


class SyntheticDataset(RenderedDataset):
    """``count`` frames of the procedural world for one split."""

    def __init__(self, count: int, split: str, protocol: str = "grandtest") -> None:
        super().__init__(WORLD, count, split, protocol)


def open_synthetic_dataset(spec, split: str | None) -> RenderedDataset:
    return SyntheticDataset(parse_count(spec, "synthetic:2000"), split or "train", spec.selector)
