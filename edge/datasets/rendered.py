"""What the two rendered worlds' datasets share: split seed ranges, clip cycles and protocols.

A rendered dataset draws clip ``k`` of a split from seed ``base[split] + k`` and takes a few moments
of each clip; the seed ranges of the splits (and of the two worlds) are disjoint, so no test
subject is ever seen in training. Protocols: ``grandtest`` (every attack species in every split)
and ``LOO_<species>`` (the species is absent from train and dev and is the only attack in test,
beside live faces). Every protocol renders the same clips, so a cache of the grand test serves
them all (``edge.datasets.sampleset``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from edge.datasets.records import RawSample
from edge.errors import DatasetError


def check_protocol(protocol: str, attacks: tuple[str, ...], world: str) -> str:
    protocol = protocol or "grandtest"
    if protocol == "grandtest" or (protocol.startswith("LOO_") and protocol[4:] in attacks):
        return protocol
    raise DatasetError(f"unknown {world} protocol '{protocol}'; use grandtest or "
                       f"{', '.join('LOO_' + a for a in attacks)}")


def protocol_keeps(protocol: str, split: str, pai: str) -> bool:
    """Whether a sample of species ``pai`` ("" = live) belongs to ``split`` under ``protocol``:
    a leave-one-out protocol drops the left-out species from train and dev, every other from test."""
    if protocol in ("", "grandtest") or not pai:
        return True
    left_out = protocol[4:]
    return pai == left_out if split == "test" else pai != left_out


@dataclass(frozen=True)
class World:
    """How one rendered world makes a dataset."""

    kind: str  # the dataset prefix
    attacks: tuple[str, ...]
    split_seed_base: dict[str, int]
    clip_cycle: tuple[str, ...]
    frames_per_clip: int
    frame_step: int  # frames between the moments taken from one clip
    make_world: Callable[[str, int, str], object]  # (scenario, clip seed, split) -> a world with .frame(i)


class RenderedDataset:
    """``count`` frames of a rendered world for one split (full frames; preprocessing follows)."""

    def __init__(self, world: World, count: int, split: str, protocol: str = "grandtest") -> None:
        if split not in world.split_seed_base:
            raise ValueError(f"split must be one of {tuple(world.split_seed_base)}, got {split!r}")
        if count < 1:
            raise DatasetError(f"{world.kind} dataset needs a positive COUNT, got {count}")
        self.world = world
        self.count = count
        self.split = split
        self.protocol = check_protocol(protocol, world.attacks, world.kind)
        self.spec = f"{world.kind}:{count}#{self.protocol}"

    def __len__(self) -> int:
        return self.count

    def describe(self) -> str:
        return f"{self.world.kind} split={self.split} protocol={self.protocol} frames={self.count}"

    def clip_seed(self, clip: int) -> int:
        return self.world.split_seed_base[self.split] + clip

    def clips(self) -> Iterator[tuple[str, int, int]]:
        """The clips the set is made of, in order, without rendering them: (scenario, clip seed, frames
        taken from it); the last clip may give fewer than ``frames_per_clip``. A tool that needs to know
        which clip a face came from walks this (``tools/mannequin_paint.py``)."""
        w = self.world
        produced = 0
        clip = 0
        while produced < self.count:
            scenario = w.clip_cycle[clip % len(w.clip_cycle)]
            if protocol_keeps(self.protocol, self.split, scenario if scenario != "live" else ""):
                frames = min(w.frames_per_clip, self.count - produced)
                yield scenario, self.clip_seed(clip), frames
                produced += frames
            clip += 1

    def render_clip(self, scenario: str, seed: int, frames: int) -> Iterator[RawSample]:
        """The first ``frames`` moments of one clip, as the set gives them."""
        w = self.world
        world = w.make_world(scenario, seed, self.split)
        for k in range(frames):
            frame = world.frame(k * w.frame_step)
            truth = frame.truth
            yield RawSample(color_bgr=frame.color_bgr, depth=frame.depth_raw, depth_kind="mm", precropped=False,
                            label=truth.label, pai=truth.pai, pai_code=truth.pai, subject=str(truth.subject),
                            path=f"{w.kind}:{scenario} seed={seed} frame={k * w.frame_step}", dataset=w.kind)

    def __iter__(self) -> Iterator[RawSample]:
        for scenario, seed, frames in self.clips():
            yield from self.render_clip(scenario, seed, frames)


def parse_count(spec, example: str) -> int:
    try:
        return int(spec.argument)
    except ValueError:
        raise DatasetError(f"dataset spec '{spec.text}': COUNT must be a whole number, as in {example}") from None
