"""The synthetic world casts its static room once per scene; the result must equal one full cast."""

from __future__ import annotations

import numpy as np
import pytest

from edge.capture.synthetic import SyntheticWorld
from edge.capture.synthetic.raycast import cast, shade
from edge.capture.synthetic.world import BYSTANDER_SLOTS_M, bystander_turn


@pytest.mark.parametrize("scenario,extra", [("print", 0), ("mask", 2)])
def test_cached_room_renders_exactly_what_one_cast_of_everything_renders(scenario, extra):
    world = SyntheticWorld(scenario, seed=5, extra_faces=extra)
    for index in (0, 23):  # the second frame reuses the cached room under a moved head
        clip, t_s = world.clip_for(index), index / world.fps
        everything = clip.surfaces(t_s) + [
            head.surface(np.array(BYSTANDER_SLOTS_M[k], np.float32), bystander_turn(k), f"bystander{k}",
                         primary=False) for k, head in enumerate(world.bystanders)]
        for camera, intr, origin in (("color", world.rig.color, (0.0, 0.0, 0.0)),
                                     ("depth", world.rig.depth, world.rig.depth_origin_m)):
            hits = cast(everything, intr, origin)
            full = shade(hits, everything, clip.light_dir, clip.ambient, clip.light_bgr)
            cached_hits, cached = world._view(clip, clip.moving_surfaces(t_s), camera)
            assert np.isfinite(hits.z).mean() > 0.5  # something was hit: the comparison is not vacuous
            np.testing.assert_array_equal(cached_hits.z, hits.z)
            for name in ("radiance", "albedo_luma", "dropout", "face_mask", "material"):
                np.testing.assert_array_equal(getattr(cached, name), getattr(full, name), err_msg=name)
