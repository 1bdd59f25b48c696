"""Spoof synthesis: move one sample's spoof trace onto a live face (STDN §3.4, DESIGN §4).

A live face ``L`` and a spoof's trace ``t`` give a new spoof ``L + warp(t)``. The warp moves the
trace from the spoof's face geometry to the live face's, so a print's edge or a mask's rim lands
where it would on this face. The same displacement field is used for RGB and depth so that both
modalities of a synthesised sample show one consistent attack.

Fields are in grid_sample's normalised coordinates ([-1, 1] across the crop), ``[N,H,W,2]`` (x, y).

A partial attack (paper glasses, a mouth cover) changes one region of a face. With ``partial_fraction``
above 0 a share of the synthesised spoofs keep the borrowed trace in one region of the live face only
(:data:`REGION_NAMES`, from its landmarks), so the model sees "part of this face is not a face" made
from every species it knows (docs/partial-synthesis.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from train.model.generator import CONTENT_FACTOR, TraceElements
from train.model.layers import upsample

RANDOM_FIELD_GRID = 4  # control points per side of the smooth random field: a few bumps per face
ELEMENT_NAMES = ("scale", "bias", "content", "texture")
REGION_NAMES = ("eyes", "mouth", "upper", "lower", "side")  # where a partial synthesised attack keeps its trace
# where the 5 landmarks (right eye, left eye, nose tip, mouth right, mouth left) sit in a crop when a
# batch has none: the medians of the photo world's training crops
CANONICAL_LANDMARKS = ((0.375, 0.437), (0.608, 0.435), (0.489, 0.570), (0.398, 0.663), (0.597, 0.662))
REGION_JITTER = (0.8, 1.25)  # each region's half-sizes are scaled by a factor drawn in this range


@dataclass(frozen=True)
class SynthesisPlan:
    """The random choices of one synthesis step, shared by both modalities.

    ``partner[i]`` is the spoof whose trace goes onto sample ``i``; ``usable[i]`` is true when ``i``
    is live and the batch has a spoof to borrow from. Hard examples scale trace element
    ``element[i]`` (index into :data:`ELEMENT_NAMES`) by ``factor[i]`` (1 = unchanged). ``region``,
    when given, confines each sample's trace to a region of its own face (1 everywhere for whole-face ones).
    """

    partner: torch.Tensor  # [N] long
    usable: torch.Tensor  # [N] bool
    displacement: torch.Tensor  # [N,H,W,2] normalised offsets
    element: torch.Tensor  # [N] long
    factor: torch.Tensor  # [N] float
    region: torch.Tensor | None = None  # [N,1,H,W] in [0, 1]: where each trace is kept (None: everywhere)

    def to(self, device: torch.device | str) -> SynthesisPlan:
        region = None if self.region is None else self.region.to(device)
        return SynthesisPlan(self.partner.to(device), self.usable.to(device), self.displacement.to(device),
                             self.element.to(device), self.factor.to(device), region)


def smooth_random_field(n: int, size_px: int, amplitude: float, generator: torch.Generator) -> torch.Tensor:
    """A smooth displacement ``[n,size,size,2]``: uniform control offsets (±amplitude), bilinearly interpolated.

    Bilinear, not bicubic: it never overshoots, so ``amplitude`` is a hard bound on the displacement.
    """
    control = (torch.rand(n, 2, RANDOM_FIELD_GRID, RANDOM_FIELD_GRID, generator=generator) * 2 - 1) * amplitude
    field = F.interpolate(control, size=(size_px, size_px), mode="bilinear", align_corners=True)
    return field.permute(0, 2, 3, 1).contiguous()


def landmark_field(source_xy: torch.Tensor, target_xy: torch.Tensor, size_px: int, sigma: float = 0.35) -> torch.Tensor:
    """Displacement that carries landmarks ``source_xy`` (spoof face) onto ``target_xy`` (live face).

    Both ``[N,P,2]`` in crop coordinates [0, 1]. At each pixel the offset is a Gaussian-weighted
    average (normalised, Shepard-style) of the landmark offsets, weights centred on the target
    landmarks, so sampling at ``p + d(p)`` reads the spoof trace where its own landmark was.
    ``sigma`` is in normalised units (0.35 ≈ the distance between the eyes in a face crop).
    """
    if source_xy.shape != target_xy.shape or source_xy.ndim != 3 or source_xy.shape[-1] != 2:
        raise ValueError(f"landmarks must both be [N,P,2], got {tuple(source_xy.shape)} and {tuple(target_xy.shape)}")
    src = source_xy * 2 - 1
    dst = target_xy * 2 - 1
    axis = (torch.arange(size_px, dtype=src.dtype) + 0.5) / size_px * 2 - 1
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).reshape(1, -1, 1, 2)  # [1,HW,1,2]
    dist2 = ((grid - dst[:, None]) ** 2).sum(-1)  # [N,HW,P]
    weights = torch.softmax(-dist2 / (2 * sigma**2), dim=-1)
    offsets = (src - dst)[:, None]  # [N,1,P,2]
    field = (weights[..., None] * offsets).sum(2)  # [N,HW,2]
    return field.reshape(-1, size_px, size_px, 2)


def warp(image: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` [N,K,H,W] at identity + ``displacement``; outside the crop reads 0 (no trace)."""
    n, _, h, w = image.shape
    theta = torch.eye(2, 3, dtype=image.dtype, device=image.device).expand(n, 2, 3)
    base = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    return F.grid_sample(image, base + displacement, mode="bilinear", padding_mode="zeros", align_corners=False)


def region_masks(landmarks_xy: torch.Tensor, kind: torch.Tensor, jitter: torch.Tensor, size_px: int) -> torch.Tensor:
    """One region of each face, ``[N,1,S,S]`` in [0, 1], edges anti-aliased over one pixel.

    ``landmarks_xy`` [N,5,2] in crop coordinates [0, 1]; ``kind`` [N] indexes :data:`REGION_NAMES`;
    ``jitter`` [N,2], drawn in :data:`REGION_JITTER`, scales a box's half-width and half-height; for
    the halves, ``jitter[:, 1] - 1`` tenths of the eye distance move the cut. Boxes are axis-aligned:
    crops are levelled on the eyes. eyes: a band across both eyes reaching past them (a paper-glasses or
    eye-cover patch); mouth: a box round the mouth corners; upper / lower: the face above / below the
    nose tip; side: the image's right of the nose tip when ``jitter[:, 1]`` is in the upper half of
    :data:`REGION_JITTER`, else its left (even odds).
    """
    pts = landmarks_xy.to(torch.float32)
    eyes, nose, mouth = pts[:, :2], pts[:, 2], pts[:, 3:]
    eye_gap = (eyes[:, 1] - eyes[:, 0]).norm(dim=-1).clamp(min=0.05)  # [N]
    big = torch.full_like(eye_gap, 10.0)  # a half-size that reaches past the crop
    eye_c, mouth_c = eyes.mean(1), mouth.mean(1)
    mouth_w = (mouth[:, 1] - mouth[:, 0]).norm(dim=-1)
    shift = (jitter[:, 1] - 1) * 0.1 * eye_gap
    right = jitter[:, 1] >= sum(REGION_JITTER) / 2
    # centre (x, y) and half-size (w, h) of each kind, [N] each
    cx = torch.stack([eye_c[:, 0], mouth_c[:, 0], nose[:, 0], nose[:, 0],
                      nose[:, 0] + torch.where(right, big, -big)])
    cy = torch.stack([eye_c[:, 1], mouth_c[:, 1] + 0.05 * eye_gap, nose[:, 1] - big + shift,
                      nose[:, 1] + big + shift, nose[:, 1]])
    hw = torch.stack([0.5 * eye_gap + 0.9 * eye_gap * jitter[:, 0], (0.5 * mouth_w + 0.35 * eye_gap) * jitter[:, 0],
                      big, big, big])
    hh = torch.stack([0.35 * eye_gap * jitter[:, 1], 0.35 * eye_gap * jitter[:, 1], big, big, big])
    pick = kind.reshape(1, -1)
    cx, cy, hw, hh = (t.gather(0, pick)[0] for t in (cx, cy, hw, hh))
    axis = (torch.arange(size_px, dtype=torch.float32) + 0.5) / size_px  # pixel centres in [0, 1]

    def inside(centre: torch.Tensor, half: torch.Tensor) -> torch.Tensor:  # [N,S]: 1 inside, ramps over a pixel
        distance = (axis[None] - centre[:, None]).abs() - half[:, None]
        return (0.5 - distance * size_px).clamp(0.0, 1.0)

    return (inside(cy, hh)[:, :, None] * inside(cx, hw)[:, None, :])[:, None]


def make_plan(
    labels: torch.Tensor,
    size_px: int,
    generator: torch.Generator,
    amplitude: float,
    hard_fraction: float,
    landmarks_xy: torch.Tensor | None = None,
    partial_fraction: float = 0.0,
) -> SynthesisPlan:
    """Draw partners, a field and hard-example choices for a batch with ``labels`` [N] (1 = spoof).

    With ``partial_fraction`` > 0, that share of the samples also draws a region (:func:`region_masks`)
    that keeps its trace; at 0 nothing more is drawn, so the generator's stream is that of a run
    without partial attacks.
    """
    n = labels.shape[0]
    spoof_idx = torch.nonzero(labels > 0.5).flatten()
    if spoof_idx.numel():
        pick = torch.randint(spoof_idx.numel(), (n,), generator=generator)
        partner = spoof_idx[pick]
    else:
        partner = torch.arange(n)
    usable = (labels <= 0.5) & (spoof_idx.numel() > 0)
    if landmarks_xy is not None:
        field = landmark_field(landmarks_xy[partner], landmarks_xy, size_px)
        field = field + smooth_random_field(n, size_px, amplitude * 0.25, generator)
    else:
        field = smooth_random_field(n, size_px, amplitude, generator)
    element = torch.randint(len(ELEMENT_NAMES), (n,), generator=generator)
    hard = torch.rand(n, generator=generator) < hard_fraction
    factor = torch.where(hard, torch.rand(n, generator=generator), torch.ones(n))
    region = None
    if partial_fraction > 0:
        partial = torch.rand(n, generator=generator) < partial_fraction
        kind = torch.randint(len(REGION_NAMES), (n,), generator=generator)
        low, high = REGION_JITTER
        jitter = low + (high - low) * torch.rand(n, 2, generator=generator)
        points = landmarks_xy if landmarks_xy is not None else torch.tensor(CANONICAL_LANDMARKS).expand(n, 5, 2)
        masks = region_masks(points, kind, jitter, size_px)
        region = torch.where(partial.reshape(n, 1, 1, 1), masks, torch.ones_like(masks))
    return SynthesisPlan(partner, usable, field, element, factor, region)


def planned_trace(plan: SynthesisPlan, elements: TraceElements, image: torch.Tensor, detach: bool = True) -> torch.Tensor:
    """The partner's trace, with one element scaled for hard examples, warped onto each sample.

    ``elements``/``image`` are one modality's trace elements and input for the whole batch; the
    result is ``[N,K,H,W]``. ``detach=True`` for targets (pixel loss, discriminator inputs);
    ``detach=False`` lets the adversarial loss teach the generator to make traces that transfer.
    """
    p = plan.partner
    n = p.shape[0]
    scaled = []
    for index, tensor in enumerate(elements):
        mine = (tensor.detach() if detach else tensor)[p]
        factor = torch.where(plan.element == index, plan.factor, torch.ones_like(plan.factor)).reshape(n, 1, 1, 1)
        scaled.append(mine * factor)
    scale, bias, content, texture = scaled
    trace = scale * image[p] + bias + upsample(content, CONTENT_FACTOR, mode="bilinear") + texture
    warped = warp(trace, plan.displacement)
    return warped if plan.region is None else warped * plan.region.to(warped.dtype)
