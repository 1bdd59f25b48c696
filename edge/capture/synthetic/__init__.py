"""The built-in synthetic RGB-D world: live heads with real relief, attacks, a D435-like sensor.

numpy + OpenCV only, deterministic per (scenario, seed, frame index). Used by tests, the demo and
as a training set that proves the pipeline learns.
"""

from edge.capture.synthetic.rig import SensorRig
from edge.capture.synthetic.scene import ATTACKS, SCENARIOS
from edge.capture.synthetic.world import SyntheticSource, SyntheticViews, SyntheticWorld, open_synthetic

__all__ = ["ATTACKS", "SCENARIOS", "SensorRig", "SyntheticSource", "SyntheticViews", "SyntheticWorld",
           "open_synthetic"]
