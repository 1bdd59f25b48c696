"""The photo world: real people from photographs on real head geometry, and attacks made from real photos.

Beside the procedural world (``edge.capture.synthetic``), whose room, light, ray caster and sensor
it shares. Its purpose: a model must not be able to tell live from attack by which renderer drew
the face. numpy + OpenCV only; the photographs, the face mesh and the segmenter are data, found at
run time (``library.py``, ``segmenter.py``) and never copied into the project.
"""

from edge.capture.photo.scene import PHOTO_ATTACKS, PHOTO_SCENARIOS
from edge.capture.photo.world import PhotoSource, PhotoWorld, open_photo

__all__ = ["PHOTO_ATTACKS", "PHOTO_SCENARIOS", "PhotoSource", "PhotoWorld", "open_photo"]
