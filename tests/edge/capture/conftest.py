"""Fixtures of the photo-world tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def library(shared_data):
    """The shared photo library, or a skip naming the command that installs the person segmenter."""
    from edge.capture.photo.library import open_library
    from edge.capture.photo.segmenter import find_segmenter

    if find_segmenter((shared_data / "models",)) is None:
        pytest.skip("person segmenter not installed: run `python tools/fetch_segmenter.py` (make setup does)")
    return open_library(shared_data)
