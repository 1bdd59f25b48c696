"""Where edgefas keeps what it can rebuild: one root, one folder per kind of cache.

Every cache lives under :func:`cache_root`: ``$EDGEFAS_CACHE`` when set, else the XDG cache folder
(``$XDG_CACHE_HOME/edgefas``, which is ``~/.cache/edgefas`` unless the user moved it). Commands
used to cache preprocessed samples in ``.cache/edgefas`` of whatever folder they were started
from, so the same dataset was rendered again from every other folder and caches appeared inside
checkouts (docs/datasets-and-caches.md). Everything here can be deleted at any time; it is rebuilt
on demand.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "EDGEFAS_CACHE"

# The folders under the root, and what fills each (the --cache-dir help of each command names its own).
CACHE_KINDS: dict[str, str] = {
    "samples": "preprocessed face crops of datasets (edgefas train, eval, calibrate threshold)",
    "bench": "synthetic recordings the benchmark plays and its reference network's ONNX file (edgefas bench)",
    "photo": "lifted face cards of the photo world, one per photo",
}


def cache_root() -> Path:
    """``$EDGEFAS_CACHE``, else ``$XDG_CACHE_HOME/edgefas``, else ``~/.cache/edgefas`` (never the working folder)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "edgefas"


def cache_dir(kind: str) -> Path:
    """The folder of one kind of cache (a key of :data:`CACHE_KINDS`) under :func:`cache_root`."""
    if kind not in CACHE_KINDS:
        raise ValueError(f"cache kind must be one of {', '.join(CACHE_KINDS)}, got {kind!r}")
    return cache_root() / kind
