"""Benchmark: median time of detection + crop + normalise per 640x480 frame, for each face detector.

Detectors run interleaved on the same frames (frame 1 yunet, frame 1 haar, frame 2 yunet, ...) so that
a slow spell of a shared machine hits both alike. Frames come from the synthetic renderer
(``synthetic:live``), pre-rendered before timing; rendering is not timed.

    python tools/bench_face.py --frames 60 --model-dir ../shared/data/models [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import cv2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames per detector (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", default=None, help="folder holding the YuNet model")
    parser.add_argument("--detectors", default="yunet,haar", help="comma-separated (default yunet,haar)")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1, as on a busy board)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    from edge.capture.synthetic import SyntheticWorld
    from edge.face import PreprocessConfig, crop_and_normalise, open_face_finder, primary_face

    cv2.setNumThreads(args.threads)
    config = PreprocessConfig()
    finders = [open_face_finder(name, model_dir=args.model_dir, detect_width_px=config.detect_width_px)
               for name in args.detectors.split(",")]
    world = SyntheticWorld("live", seed=args.seed)
    frames = [world.frame(i * 3) for i in range(args.frames)]
    for finder in finders:  # warm-up: first calls allocate
        finder.detect(frames[0].color_bgr)

    timings: dict[str, dict[str, list[float]]] = {f.name: {"detect": [], "crop_normalise": [], "total": []}
                                                 for f in finders}
    found = {f.name: 0 for f in finders}
    for frame in frames:
        for finder in finders:
            t0 = time.perf_counter()
            face = primary_face(finder.detect(frame.color_bgr), frame.color_bgr.shape)
            t1 = time.perf_counter()
            if face is not None:
                crop_and_normalise(frame, face, config)
                found[finder.name] += 1
            t2 = time.perf_counter()
            timings[finder.name]["detect"].append((t1 - t0) * 1e3)
            timings[finder.name]["crop_normalise"].append((t2 - t1) * 1e3)
            timings[finder.name]["total"].append((t2 - t0) * 1e3)

    report = {
        name: {
            "median_detect_ms": round(statistics.median(t["detect"]), 2),
            "median_crop_normalise_ms": round(statistics.median(t["crop_normalise"]), 2),
            "median_total_ms": round(statistics.median(t["total"]), 2),
            "faces_found": found[name],
            "frames": len(frames),
        }
        for name, t in timings.items()
    }
    meta = {"frame": f"{frames[0].color_bgr.shape[1]}x{frames[0].color_bgr.shape[0]}",
            "detect_width_px": config.detect_width_px, "size_px": config.size_px,
            "opencv": cv2.__version__, "opencv_threads": args.threads}
    if args.json:
        print(json.dumps({"meta": meta, "detectors": report}, indent=2))
        return 0
    print(" ".join(f"{k}={v}" for k, v in meta.items()))
    print(f"{'detector':<8} {'detect ms':>10} {'crop+norm ms':>13} {'total ms':>9} {'found':>8}")
    for name, row in report.items():
        print(f"{name:<8} {row['median_detect_ms']:>10.2f} {row['median_crop_normalise_ms']:>13.2f} "
              f"{row['median_total_ms']:>9.2f} {row['faces_found']:>4}/{row['frames']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
