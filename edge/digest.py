"""The sha256 of a file, read in blocks: the one helper for model pins, detector releases and exports."""

from __future__ import annotations

import hashlib
import os

BLOCK_BYTES = 1 << 20  # 1 MiB reads: a model file of hundreds of MB never sits in memory at once


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Lower-case hex sha256 of the file's bytes (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()
