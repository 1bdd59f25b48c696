"""Face-metered exposure: the live session tells a camera that can meter where the face is.

The live RealSense camera's ``set_exposure_roi`` itself is exercised against a connected camera
(tests/edge/capture/test_realsense_camera.py, skipped without one); here a stand-in records the calls.
"""

from __future__ import annotations

import pytest

from edge.capture.source import MetersExposure
from edge.capture.synthetic import SyntheticWorld
from edge.capture.watchdog import Watchdog, WatchdogConfig
from edge.live.session import LiveOptions, LiveSession
from engines.bundled import default_model_path
from live_fakes import FiniteSource


class MeteringSource(FiniteSource):
    def __init__(self, frames) -> None:
        super().__init__(frames)
        self.boxes: list[tuple[float, float, float, float]] = []

    def set_exposure_roi(self, box_xyxy) -> bool:
        self.boxes.append(tuple(box_xyxy))
        return True


@pytest.fixture(scope="module")
def frames():
    world = SyntheticWorld("live", 3, distance_m=0.5)
    return [world.frame(i) for i in range(8)]


def test_the_session_meters_exposure_on_every_face_it_finds(frames, shared_data):
    source = MeteringSource(frames)
    options = LiveOptions(model=default_model_path(), model_dir=shared_data / "models", frames=len(frames),
                          queue_size=len(frames))
    with LiveSession(options, source=source) as session:
        results = list(session)
    faces = [(r.face.x0, r.face.y0, r.face.x1, r.face.y1) for r in results if r.face is not None]
    assert faces, "no face was found: the test did not exercise metering"
    assert source.boxes == faces


def test_the_watchdog_passes_metering_on_only_to_a_source_that_has_it(frames):
    metering = MeteringSource(frames[:1])
    dog = Watchdog(lambda: metering, "test:finite", WatchdogConfig())
    assert isinstance(dog, MetersExposure)
    assert dog.set_exposure_roi((1, 2, 3, 4)) is False  # not opened yet: nothing to meter
    for _ in dog:
        assert dog.set_exposure_roi((1, 2, 3, 4)) is True
    assert metering.boxes == [(1, 2, 3, 4)]
    plain = Watchdog(lambda: FiniteSource(frames[:1]), "test:finite", WatchdogConfig())
    for _ in plain:
        assert plain.set_exposure_roi((1, 2, 3, 4)) is False
