"""Fixtures of the face tests; the plain helpers live in face_fixtures.py (a unique module name)."""

import pytest

from face_fixtures import make_face_frame


@pytest.fixture
def analytic_face():
    return make_face_frame
