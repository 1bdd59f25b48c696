"""PreprocessConfig's metadata contract, the pose/size gates and preprocess_frame's plumbing."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from face_fixtures import make_face_frame

from edge.errors import ModelError
from edge.face import FaceTracker, PreprocessConfig, crop_and_normalise, preprocess_frame
from edge.face.quality import NOSE_FORWARD_IOD, estimate_pose
from edge.samples import FaceBox


def test_metadata_round_trip_is_exact_for_every_field():
    config = PreprocessConfig(size_px=256, crop_scale=1.0 / 3.0, align_roll=True, depth_mode="mad",
                              depth_window_mm=87.5, inner_region="landmarks", min_relief_mm=0.1 + 0.2)
    metadata = config.to_metadata()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    assert PreprocessConfig.from_metadata(metadata) == config
    # Other contracts in the same artifact are left alone.
    assert PreprocessConfig.from_metadata({**metadata, "model.preset": "edge"}) == config


def test_metadata_missing_or_unknown_keys_name_the_key():
    metadata = PreprocessConfig().to_metadata()
    missing = dict(metadata)
    del missing["preprocess.depth_window_mm"]
    with pytest.raises(ModelError, match="preprocess.depth_window_mm"):
        PreprocessConfig.from_metadata(missing)
    with pytest.raises(ModelError, match="preprocess.colour_space"):
        PreprocessConfig.from_metadata({**metadata, "preprocess.colour_space": "yuv"})
    with pytest.raises(ModelError, match="preprocess.size_px"):
        PreprocessConfig.from_metadata({**metadata, "preprocess.size_px": "big"})
    with pytest.raises(ModelError, match="preprocess.version"):
        PreprocessConfig.from_metadata({k: v for k, v in metadata.items() if k != "preprocess.version"})


@pytest.mark.parametrize(("field", "value"), [("depth_mode", "log"), ("size_px", 0), ("crop_scale", -1.0),
                                               ("inner_region", "ears"), ("inner_fraction", 1.5)])
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"PreprocessConfig.{field}"):
        PreprocessConfig(**{field: value})


def test_sample_contract_rgb_order_and_range():
    frame, box = make_face_frame(0.6, seed=11)
    sample = crop_and_normalise(frame, box, PreprocessConfig())
    assert sample.rgb.shape == (3, 128, 128) and sample.rgb.dtype == np.float32
    assert 0.0 <= sample.rgb.min() and sample.rgb.max() <= 1.0
    # The fixture's face is BGR (120, 150, 200): in RGB order the first channel is the 200.
    centre = sample.rgb[:, 64, 64]
    assert centre[0] == pytest.approx(200 / 255, abs=1e-3) and centre[2] == pytest.approx(120 / 255, abs=1e-3)


def test_small_face_is_gated():
    frame, box = make_face_frame(1.5, seed=12)  # ~57 px wide at fx 613
    assert crop_and_normalise(frame, box, PreprocessConfig()).gate == "face_small"


def test_turned_head_is_gated_by_pose():
    iod_mm = 63.0
    shift = NOSE_FORWARD_IOD * iod_mm * math.tan(math.radians(60))
    frame, box = make_face_frame(0.6, seed=13, yaw_nose_shift_mm=shift)
    pose = estimate_pose(box.landmarks_xy)
    assert pose.yaw_deg == pytest.approx(60, abs=1)
    assert crop_and_normalise(frame, box, PreprocessConfig()).gate == "pose_extreme"


def test_frontal_landmarks_read_frontal_and_roll_is_measured():
    _, box = make_face_frame(0.6)
    pose = estimate_pose(box.landmarks_xy)
    assert abs(pose.yaw_deg) < 1 and abs(pose.pitch_deg) < 2 and abs(pose.roll_deg) < 1e-6
    angle = math.radians(30)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)
    rolled = estimate_pose(box.landmarks_xy @ rotation.T)
    assert rolled.roll_deg == pytest.approx(30, abs=0.1) and abs(rolled.yaw_deg) < 1


def test_bad_face_box_is_refused_naming_the_field():
    frame, box = make_face_frame(0.6)
    with pytest.raises(ValueError, match="landmarks_xy must be a 5 x 2"):
        crop_and_normalise(frame, dataclasses.replace(box, landmarks_xy=np.zeros((4, 2), np.float32)),
                           PreprocessConfig())
    with pytest.raises(TypeError, match="frame must be an RGBDFrame"):
        crop_and_normalise(frame.color_bgr, box, PreprocessConfig())


class _ListFinder:
    """A FaceFinder that returns prepared boxes, to test the plumbing around real detectors."""

    name = "list"

    def __init__(self, boxes: list[FaceBox]) -> None:
        self.boxes = boxes

    def detect(self, color_bgr: np.ndarray) -> list[FaceBox]:
        return list(self.boxes)


def test_preprocess_frame_keeps_the_primary_face_and_tracks_it():
    frame, box = make_face_frame(0.6, seed=14)
    bystander = FaceBox(10, 10, 60, 60, 1.0, box.landmarks_xy * 0 + 30, "list")
    tracker = FaceTracker()
    first = preprocess_frame(frame, _ListFinder([bystander, box]), PreprocessConfig(), tracker)
    second = preprocess_frame(frame, _ListFinder([box, bystander]), PreprocessConfig(), tracker)
    assert first is not None and second is not None
    assert first.face.x0 == box.x0 and first.face.track_id > 0
    assert second.face.track_id == first.face.track_id
    assert preprocess_frame(frame, _ListFinder([]), PreprocessConfig(), tracker) is None


def test_a_passthrough_model_on_metric_depth_is_one_line_saying_what_to_use():
    """A CASIA-style model (8-bit depth) on a camera's millimetres used to be a ValueError traceback."""
    from edge.errors import ConfigError

    frame, box = make_face_frame(0.6, seed=11)
    with pytest.raises(ConfigError, match="expects 8-bit pre-normalised depth .* use a model trained with depth "
                                          "mode 'window' or 'mad'") as err:
        crop_and_normalise(frame, box, PreprocessConfig(depth_mode="passthrough"))
    assert "\n" not in str(err.value)
    eight_bit = dataclasses.replace(frame, depth_raw=np.minimum(frame.depth_raw, 200).astype(np.uint16))
    assert crop_and_normalise(eight_bit, box, PreprocessConfig(depth_mode="passthrough")).depth.max() <= 1.0
