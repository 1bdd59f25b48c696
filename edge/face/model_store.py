"""Where the face-detector model files live, and which releases we recognise by their sha256.

YuNet is not shipped in any pip wheel (its home is opencv/opencv_zoo, ``models/face_detection_yunet/``,
MIT), so the product looks for it in a short, fixed list of directories. A file whose sha256 is not
in :data:`KNOWN_YUNET` is still used if OpenCV can load it, but is reported as ``unknown`` everywhere
it is shown; one OpenCV cannot load (a truncated download, a different file under the name) is
reported as unusable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edge.digest import file_sha256

MODEL_DIR_ENV = "EDGEFAS_MODEL_DIR"

YUNET_SOURCE = "https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet (MIT)"


@dataclass(frozen=True)
class KnownModel:
    """A published model file identified by content, not by name."""

    release: str
    file_name: str  # the name upstream publishes it under
    size_bytes: int
    sha256: str


# sha256 and sizes of the upstream Git LFS objects, as pinned by several independent public projects
# that load them with cv2.FaceDetectorYN (see docs/face-detectors.md for how this was checked).
KNOWN_YUNET: tuple[KnownModel, ...] = (
    KnownModel("yunet-2026may", "face_detection_yunet_2026may.onnx", 229_738,
               "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"),
    KnownModel("yunet-2023mar", "face_detection_yunet_2023mar.onnx", 232_589,
               "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"),
)

# Names looked for in each directory, in order: our own stable name first, then upstream's names.
YUNET_FILE_NAMES: tuple[str, ...] = ("face_detection_yunet.onnx",) + tuple(m.file_name for m in KNOWN_YUNET)


@dataclass(frozen=True)
class InstalledModel:
    """One model file found on disk; ``release`` is ``"unknown"`` when its sha256 matches none we know,
    ``problem`` says why OpenCV cannot load it (None when it loads or is a known release)."""

    path: Path
    size_bytes: int
    sha256: str
    release: str
    problem: str | None = None

    @property
    def known(self) -> bool:
        return self.release != "unknown"


def model_dirs(model_dir: str | os.PathLike[str] | None = None) -> tuple[Path, ...]:
    """The directories searched, in order.

    An explicit ``model_dir`` (``--model-dir``) is the only place looked: the user said where. Else
    ``$EDGEFAS_MODEL_DIR`` if set, then the per-user data directory (XDG Base Directory spec:
    ``$XDG_DATA_HOME``, default ``~/.local/share``), then the system-wide ``/usr/local/share`` and
    ``/usr/share`` (Filesystem Hierarchy Standard 3.0 §4.11 and §4.9).
    """
    if model_dir is not None:
        return (Path(model_dir).expanduser(),)
    dirs: list[Path] = []
    env = os.environ.get(MODEL_DIR_ENV, "").strip()
    if env:
        dirs.append(Path(env).expanduser())
    data_home = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    dirs.append(Path(data_home) / "edgefas" / "models")
    dirs.append(Path("/usr/local/share/edgefas/models"))
    dirs.append(Path("/usr/share/edgefas/models"))
    return tuple(dirs)


def load_problem(path: Path) -> str | None:
    """Why OpenCV's YuNet cannot load ``path``, or None when it can."""
    import cv2

    try:
        cv2.FaceDetectorYN.create(str(path), "", (320, 320))
    except cv2.error as exc:
        return f"OpenCV cannot load it ({str(exc).strip().splitlines()[-1]})"
    return None


def identify_model(path: Path) -> InstalledModel:
    """Hash ``path`` and name its release from :data:`KNOWN_YUNET` (or ``unknown``, then try to load it)."""
    digest = file_sha256(path)
    release = next((m.release for m in KNOWN_YUNET if m.sha256 == digest), "unknown")
    problem = load_problem(path) if release == "unknown" else None
    return InstalledModel(path=path, size_bytes=path.stat().st_size, sha256=digest, release=release, problem=problem)


def installed_models(model_dir: str | os.PathLike[str] | None = None) -> list[InstalledModel]:
    """Every YuNet file present in the searched directories, in search order (first = the one used)."""
    found: list[InstalledModel] = []
    for directory in model_dirs(model_dir):
        for name in YUNET_FILE_NAMES:
            candidate = directory / name
            if candidate.is_file():
                found.append(identify_model(candidate))
    return found


def find_yunet(model_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The YuNet file that would be used, or None when none of the searched directories holds one."""
    for directory in model_dirs(model_dir):
        for name in YUNET_FILE_NAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None
