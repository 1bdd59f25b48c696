"""``SyntheticWorld(extra_faces=k)``: bystander heads for benchmarks with several faces in view."""

from __future__ import annotations

import numpy as np
import pytest

from edge.capture.synthetic import SyntheticWorld
from edge.capture.synthetic.world import BYSTANDER_SLOTS_M


def test_no_bystanders_renders_exactly_the_default_world():
    plain, zero = SyntheticWorld("live", 3).frame(2), SyntheticWorld("live", 3, extra_faces=0).frame(2)
    assert np.array_equal(plain.color_bgr, zero.color_bgr) and np.array_equal(plain.depth_raw, zero.depth_raw)
    assert plain.truth.faces == zero.truth.faces


def test_bystanders_add_faces_in_view_deterministically():
    base = SyntheticWorld("live", 3, distance_m=0.6).frame(0)
    a = SyntheticWorld("live", 3, distance_m=0.6, extra_faces=2).frame(0)
    b = SyntheticWorld("live", 3, distance_m=0.6, extra_faces=2).frame(0)
    assert np.array_equal(a.color_bgr, b.color_bgr)
    assert len(a.truth.faces) == len(base.truth.faces) + 2
    height, width = a.color_bgr.shape[:2]
    for face in a.truth.faces[len(base.truth.faces):]:
        x0, y0, x1, y1 = face.box_xyxy
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, "a bystander stands inside the picture"
        # the bystander's pixels changed: its box differs from the scene without it
        region = (slice(int(y0), int(y1)), slice(int(x0), int(x1)))
        assert not np.array_equal(a.color_bgr[region], base.color_bgr[region])


def test_too_many_bystanders_is_refused():
    with pytest.raises(ValueError, match="extra_faces"):
        SyntheticWorld("live", 0, extra_faces=len(BYSTANDER_SLOTS_M) + 1)
