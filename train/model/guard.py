"""The depth guard: a small depth-only network whose decision the colour stream cannot overrule.

The two-stream network fuses colour into depth after every encoder stage, and on the attacks it
trains on colour is enough; its depth path then leaves a cue unused that a depth-only network
learns from the same species and carries to ones it has not seen (paper glasses, the wrapped print:
docs/depth-guard.md). The guard reads the depth crop alone: four conv + BatchNorm + ReLU + 2x2
max-pool stages, then a 1x1 conv to a map at 1/16 of the input, trained per location towards the
label with a logistic loss (alone, before the run: train/guard_warmup.py). Its score is the mean of
the map's :data:`GUARD_TOP_LOCATIONS` highest probabilities: a partial attack (paper glasses) is a local
cue, and the whole map's mean dilutes it below the owners' own upper tail (docs/depth-guard.md).

The network's score is then ``max(score, guard + guard_offset)`` (:class:`~train.model.network.SpoofTraceNet`):
with ``guard_offset = threshold - q`` (``q`` the guard's score that only a share
:data:`GUARD_LIVE_SHARE` of the dev live faces exceed), an attack is one the network calls an
attack *or* one the guard does. Until calibration sets the offset, the guard cannot raise a score.
"""

from __future__ import annotations

import torch
from torch import nn

# the guard's widths (channels after each of its four stages; its map is at 1/16 of the input)
GUARD_CHANNELS: tuple[int, int, int, int] = (16, 32, 48, 64)
# share of dev live faces the guard alone may refuse: its line is at their 99.5th percentile, so it adds
# about half a point of owners refused (docs/depth-guard.md measures 0.16-0.5 points on the test people)
GUARD_LIVE_SHARE = 0.005
# locations of the map whose mean is the guard's score (of 64 on a 128 px crop): measured against the whole
# map's mean and its max on unseen paper glasses and the wrapped print (docs/experiments.md, 5 Dec 2026)
GUARD_TOP_LOCATIONS = 4
# offset before calibration: the guard's score is in [0, 1], so it cannot reach a score above -1
GUARD_OFFSET_OFF = -2.0


class DepthGuard(nn.Module):
    """Depth ``[N,1,S,S]`` -> logits ``[N,1,S/16,S/16]`` (one per location: attack or not)."""

    def __init__(self, channels: tuple[int, ...] = GUARD_CHANNELS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        widths = (1, *channels)
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(widths[-1], 1, 1)

    def forward(self, depth: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(depth))

    @staticmethod
    def score(logits: torch.Tensor) -> torch.Tensor:
        """The guard's score ``[N]`` in [0, 1]: the mean of its map's highest probabilities."""
        probs = torch.sigmoid(logits).flatten(1)
        return probs.topk(min(GUARD_TOP_LOCATIONS, probs.shape[1]), dim=1).values.mean(dim=1)


def guard_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Logistic loss of every location of the map against its sample's label (0 live, 1 attack)."""
    target = labels.reshape(-1, 1, 1, 1).to(logits.dtype).expand_as(logits)
    return nn.functional.binary_cross_entropy_with_logits(logits, target)
