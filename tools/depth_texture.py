"""A recording's depth texture beside the rendered worlds' (docs/synthetic-world.md, "Sensor").

    python tools/depth_texture.py --bag ../shared/data/realsense/single_depth_color_640x480.bag --seeds 5

For the recording's first depth frame (the camera's own grid, no filters) and for live clips of the
procedural world (the depth camera's grid and the colour-aligned grid), per depth band: the RMS of
the residual after a 2 px Gaussian, its correlation with the next pixel, the pixels measured
(``edge.bench.depth_texture``). A stereo camera's error is shared by neighbours (0.5 and more).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.bench.depth_texture import depth_texture  # noqa: E402
from edge.capture.synthetic import SyntheticWorld  # noqa: E402

BANDS_MM = ((400, 800), (800, 1200), (1200, 2500), (2500, 6000))


def first_depth_mm(path: Path) -> np.ndarray:
    """The recording's first depth frame in mm, as the camera wrote it (no filters, not aligned)."""
    import pyrealsense2 as rs

    pipeline, config = rs.pipeline(), rs.config()
    config.enable_device_from_file(str(path), repeat_playback=False)
    profile = config.resolve(pipeline)
    playback = profile.get_device().as_playback()
    playback.set_real_time(False)
    playback.pause()  # started paused so the first frames reach the pipeline (edge/capture/playback.py)
    started = pipeline.start(config)
    started.get_device().as_playback().resume()
    try:
        frames = pipeline.wait_for_frames(10_000)
        depth = frames.get_depth_frame()
        scale = started.get_device().first_depth_sensor().get_depth_scale()
        return np.asanyarray(depth.get_data()).astype(np.float32) * np.float32(scale * 1000.0)
    finally:
        pipeline.stop()


def rows(name: str, depth_mm: np.ndarray) -> list[str]:
    out = []
    for lo, hi in BANDS_MM:
        t = depth_texture(depth_mm, (depth_mm > lo) & (depth_mm < hi))
        if t is not None:
            out.append(f"| {name} | {lo}-{hi} | {t.median_mm:.0f} | {t.rms_mm:.2f} | {t.neighbour_corr:.2f} | {t.pixels} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bag", type=Path, default=Path("../shared/data/realsense/single_depth_color_640x480.bag"))
    ap.add_argument("--seeds", type=int, default=5, help="live clips of the procedural world (dev seeds)")
    args = ap.parse_args()
    if not args.bag.is_file():
        sys.exit(f"error: recording {args.bag} not found; pass --bag PATH to a RealSense .bag")
    lines = ["| depth | band mm | median mm | residual RMS mm | next-pixel corr | pixels |", "|---|---|---|---|---|---|"]
    try:
        recording = first_depth_mm(args.bag)
    except RuntimeError as exc:  # librealsense's word for a file it cannot play
        sys.exit(f"error: cannot read recording {args.bag}: {str(exc).splitlines()[0]}; pass a RealSense .bag")
    lines += rows(f"recording {args.bag.name}", recording)
    for k in range(args.seeds):
        views = SyntheticWorld("live", 20_000_000 + 8 * k).render(0, depth_camera=True)
        lines += rows(f"rendered live {k}, depth grid", views.depth_raw.astype(np.float32))
        lines += rows(f"rendered live {k}, aligned", views.depth_aligned.astype(np.float32))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
