"""The exposure level's one rule, shared by the network (``train/model/layers.py``), its configuration
(``train/model/presets.py``) and a model file's metadata (``engines/metadata.py``); no imports, so every
side can read it (docs/exposure-normalisation.md)."""

from __future__ import annotations

MEAN_LIMIT = 1.0  # a crop's mean brightness lies in [0, 1); 0 = the level is off
CONTRAST_LIMIT = 0.5  # a levelled crop's standard deviation lies in [0, 0.5); 0 = the contrast is kept


def exposure_level_problem(mean: float, contrast: float) -> str | None:
    """Why ``(mean, contrast)`` cannot be a model's exposure level, naming the field; None when it can."""
    if not 0.0 <= mean < MEAN_LIMIT:
        return f"exposure_mean {mean} must be in [0, {MEAN_LIMIT:g}) (0 = off)"
    if not 0.0 <= contrast < CONTRAST_LIMIT:
        return f"exposure_contrast {contrast} must be in [0, {CONTRAST_LIMIT:g}) (0 = off)"
    if contrast and not mean:
        return f"exposure_contrast {contrast} needs exposure_mean: the contrast is levelled about that mean"
    return None
