"""Both real detectors on real photographs, the FaceFinder contract, and how finders are chosen."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from face_fixtures import FACES, MODELS, require_dir

from edge.errors import ChoiceError, ModelError
from edge.face import FaceFinder, box_iou, open_face_finder
from edge.face.model_store import KNOWN_YUNET, find_yunet, identify_model, installed_models
from edge.face.yunet import YuNetFinder
from edge.samples import FaceBox

# Face regions checked by eye on the photographs (brow/hairline to chin, cheek to cheek), x0 y0 x1 y1.
HAND_BOXES = {
    "astronaut.png": (175.0, 68.0, 272.0, 186.0),
    "sergey.png": (125.0, 115.0, 460.0, 530.0),
}


def hand_box(name: str) -> FaceBox:
    return FaceBox(*HAND_BOXES[name], 1.0, np.zeros((5, 2), np.float32), "hand")


def photo(name: str) -> np.ndarray:
    path = require_dir(FACES) / name
    image = cv2.imread(str(path))
    assert image is not None, f"could not decode {path}"
    return image


@pytest.fixture(params=["yunet", "haar"])
def finder(request) -> FaceFinder:
    if request.param == "yunet":
        require_dir(MODELS)
    return open_face_finder(request.param, model_dir=MODELS)


@pytest.mark.parametrize("name", sorted(HAND_BOXES))
def test_both_detectors_find_the_face_in_real_photographs(finder, name):
    faces = finder.detect(photo(name))
    assert len(faces) == 1, f"{finder.name} found {len(faces)} faces in {name}"
    face = faces[0]
    assert face.detector == finder.name
    assert box_iou(face, hand_box(name)) >= 0.5
    # Landmarks in the subject's order: the right eye is on the image's left, eyes above nose above mouth.
    lm = face.landmarks_xy
    assert lm.shape == (5, 2) and lm.dtype == np.float32
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
    assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])


def test_finders_follow_the_contract_and_find_nothing_in_a_blank_image(finder):
    assert isinstance(finder, FaceFinder)
    assert finder.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    with pytest.raises(ValueError, match="color_bgr must be H x W x 3 uint8"):
        finder.detect(np.zeros((480, 640), np.uint8))


@pytest.mark.parametrize("name", sorted(HAND_BOXES))
def test_haar_box_landmarks_sit_near_yunet_landmarks(name):
    require_dir(MODELS)
    image = photo(name)
    yunet = open_face_finder("yunet", model_dir=MODELS, detect_width_px=0).detect(image)[0]
    haar = open_face_finder("haar", detect_width_px=0).detect(image)[0]
    error = np.linalg.norm(haar.landmarks_xy - yunet.landmarks_xy, axis=1) / haar.width
    assert error.max() < 0.1, f"estimated landmarks off by {error.max():.2f} box widths"


def test_downscaled_detection_maps_back_to_the_full_frame():
    require_dir(MODELS)
    image = photo("sergey.png")
    full = open_face_finder("yunet", model_dir=MODELS, detect_width_px=0).detect(image)[0]
    small = open_face_finder("yunet", model_dir=MODELS, detect_width_px=160).detect(image)[0]
    assert box_iou(full, small) > 0.8
    assert np.abs(full.landmarks_xy - small.landmarks_xy).max() < 0.05 * full.width


def test_auto_prefers_yunet_and_falls_back_to_haar_with_a_warning(tmp_path, caplog):
    require_dir(MODELS)
    assert open_face_finder("auto", model_dir=MODELS).name == "yunet"
    with caplog.at_level(logging.WARNING, logger="edge.face.finder"):
        fallback = open_face_finder("auto", model_dir=tmp_path)
    assert fallback.name == "haar"
    assert any(r.levelno == logging.WARNING and "haar" in r.getMessage() for r in caplog.records)


def test_yunet_by_name_without_its_file_says_where_it_looked_and_where_to_get_it(tmp_path):
    with pytest.raises(ModelError) as err:
        open_face_finder("yunet", model_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "opencv_zoo" in message and "\n" not in message
    with pytest.raises(ChoiceError, match="--detector must be one of auto, yunet, haar, got 'mtcnn'"):
        open_face_finder("mtcnn")


def test_model_dir_env_var_is_searched(monkeypatch, tmp_path):
    require_dir(MODELS)
    monkeypatch.setenv("EDGEFAS_MODEL_DIR", str(MODELS))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert find_yunet() == MODELS / "face_detection_yunet.onnx"
    monkeypatch.delenv("EDGEFAS_MODEL_DIR")
    (tmp_path / "edgefas" / "models").mkdir(parents=True)
    assert all(m.path.parent != MODELS for m in installed_models())


def test_shared_yunet_copy_is_a_known_release_and_junk_is_unknown(tmp_path):
    require_dir(MODELS)
    model = identify_model(MODELS / "face_detection_yunet.onnx")
    assert model.known and model.sha256 in {m.sha256 for m in KNOWN_YUNET}
    assert model.size_bytes == next(m.size_bytes for m in KNOWN_YUNET if m.release == model.release)
    junk = tmp_path / "face_detection_yunet.onnx"
    junk.write_bytes(b"not an onnx file")
    assert identify_model(junk).release == "unknown"
    assert model.problem is None and "cannot load" in identify_model(junk).problem
    with pytest.raises(ModelError, match="cannot load the YuNet model"):
        YuNetFinder(junk)


def test_models_command_says_a_corrupt_yunet_does_not_load(tmp_path):
    """A truncated YuNet download used to be listed like a usable model."""
    import json

    from typer.testing import CliRunner

    from edge.cli.app import app

    require_dir(MODELS)
    (tmp_path / "face_detection_yunet.onnx").write_bytes((MODELS / "face_detection_yunet.onnx").read_bytes()[:5000])
    result = CliRunner().invoke(app, ["models", "--model-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    (listed,) = json.loads(result.stdout)["models"]
    assert listed["release"] == "unknown" and listed["loads"] is False and "cannot load" in listed["problem"]


@pytest.mark.parametrize("size, seen", [
    ((640, 480), (320, 240)),   # the 4:3 mode the contract is written for
    ((848, 480), (424, 240)),   # 16:9 modes keep the 4:3 height: same pixels per degree
    ((1280, 720), (427, 240)),
    ((512, 512), (320, 320)),   # narrower than 4:3: the width rule, as before
    ((300, 200), (300, 200)),   # already small: never upscaled
])
def test_the_detector_sees_every_mode_at_the_4_3_modes_scale(size, seen):
    from edge.face.detection_image import downscale_for_detection

    image, factor = downscale_for_detection(np.zeros((size[1], size[0], 3), np.uint8), 320)
    assert (image.shape[1], image.shape[0]) == seen
    assert factor == pytest.approx(size[0] / seen[0])


def test_a_face_in_a_16_9_mode_is_found_where_it_is_found_at_640x480():
    # A face at ~1 m (synthetic:mixed seed 20, a live person at 0.99 m): found at 640x480; at 848x480 and
    # 1280x720 a fixed 320 px detection width once shrank such a face below what YuNet finds. (Until the
    # procedural heads were deepened on 5 Dec 2026 this was seed 8, a print at 0.98 m.)
    require_dir(MODELS)
    from edge.capture.synthetic import SyntheticWorld
    from edge.capture.synthetic.rig import SensorRig

    finder = open_face_finder("yunet", model_dir=MODELS)
    for size in ((640, 480), (848, 480), (1280, 720)):
        frame = SyntheticWorld("mixed", 20, rig=SensorRig.d435(*size)).render(60)
        assert 0.9 < frame.truth.faces[0].distance_m < 1.1
        faces = finder.detect(frame.color_bgr)
        assert len(faces) == 1, f"{size}: {len(faces)} faces"
        ys, xs = np.nonzero(frame.truth.face_mask)
        cx, cy = faces[0].center
        assert xs.min() <= cx <= xs.max() and ys.min() <= cy <= ys.max()
