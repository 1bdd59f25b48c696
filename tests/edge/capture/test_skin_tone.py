"""tools/skin_tone.py: ITA and its classes, cheek patches from landmarks, and the people of the photo world."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dataset_fixture_loader import load_tool
from edge.errors import EdgefasError


def _bgr_of_lab(lightness: float, a: float, b: float) -> np.ndarray:
    lab = np.array([[[lightness, a, b]]], np.float32)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2BGR)[0, 0] * 255.0, 0, 255).round().astype(np.uint8)


def test_ita_and_its_classes_at_their_bounds():
    tool = load_tool("skin_tone")
    assert tool.ita_degrees(75.0, 25.0) == pytest.approx(45.0)
    assert tool.ita_degrees(50.0, 18.0) == pytest.approx(0.0)
    assert tool.ita_degrees(30.0, 20.0) == pytest.approx(-45.0)
    assert [tool.ita_class(v) for v in (56, 55, 41.5, 41, 30, 12, 0, -30, -31)] == [
        "very light", "light", "light", "intermediate", "intermediate", "tan", "brown", "dark", "dark"]


def test_skin_ita_reads_the_cheeks_not_the_eyes_nose_or_background():
    """A face whose cheeks alone carry a known skin colour (L* 70, b* 20: ITA 45): every other pixel is a
    colour that would move the reading far from it."""
    tool = load_tool("skin_tone")
    image = np.zeros((200, 200, 3), np.uint8)
    image[:] = _bgr_of_lab(30.0, 0.0, -20.0)  # background, eyes and nose: a dark blue
    landmarks = np.array([[70, 80], [130, 80], [100, 110], [78, 140], [122, 140]], np.float32)
    for x0, y0, x1, y1 in tool.cheek_patches(landmarks):
        assert 40 < x0 < x1 < 160 and 85 < y0 < y1 < 135  # below the eyes, above the mouth, off the nose
        assert not (x0 <= 100 < x1)
        image[y0:y1, x0:x1] = _bgr_of_lab(70.0, 12.0, 20.0)
    assert tool.skin_ita(image, landmarks) == pytest.approx(45.0, abs=1.5)
    with pytest.raises(ValueError, match="coincide"):
        tool.cheek_patches(np.array([[5, 5], [5, 5], [6, 8], [4, 9], [6, 9]], np.float32))


def test_every_person_of_the_photo_world_gets_a_tone_and_their_refusals(tmp_path, shared_data, capsys):
    tool = load_tool("skin_tone")
    from edge.capture.photo.library import open_library

    library = open_library(shared_data)
    split_of = library.split_of()
    test_people = sorted(i for i, s in split_of.items() if s == "test")
    read = tmp_path / "photo.json"
    read.write_text(json.dumps({"clean": {"bpcer_by_subject": {
        name: {"refused": k, "scored": 100, "bpcer": k / 100} for k, name in enumerate(test_people)}}}))
    out = tmp_path / "tones.json"
    assert tool.main(["--data", str(shared_data), "--model-dir", str(shared_data / "models"), "--read", str(read),
                      "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert {r["identity"]: r["split"] for r in rows} == split_of
    assert all(r["photos"] >= 1 and -90 <= r["ita"] <= 90 for r in rows)
    assert {r["tone"] for r in rows} <= {name for name, _ in tool.ITA_CLASSES} | {"dark"}
    assert [(r["identity"], r["refused"]) for r in rows if r["scored"]] == [(n, k) for k, n in enumerate(test_people)]
    assert f"| {test_people[1]} | test |" in capsys.readouterr().out

    read.write_text("{}")
    assert tool.main(["--data", str(shared_data), "--read", str(read)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --read {read}: not a photo table") and "\n" not in err
