"""Does the model decide the same on x2-decimated depth? Scores of one set of recordings, two filter chains.

    python tools/decimation_check.py --seeds 4 --frames 45 --model-dir ../shared/data/models --json out.json

Records ``--seeds`` seeded scenes of every scenario through the software device (raw depth in the
depth camera's grid, as a camera records it; cached under --cache-dir), plays each recording through
the product's default depth filters and through ``decimate2`` (2x decimation first), and runs every
frame through the same face finder, preprocessing and runner. Reports, per chain and scenario, how
many frames were scored and how many would pass as live on their own (score below the model's
threshold), and the score change between the chains on the frames both scored.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from edge.capture.playback import open_with_filters
from edge.capture.software_device import record_synthetic
from edge.capture.source import SourceOptions
from edge.face.finder import open_face_finder
from edge.face.preprocess import PreprocessConfig, preprocess_frame
from engines.bundled import default_model_path
from engines.runner import open_runner

SCENARIOS = ("live", "print", "replay", "mask", "cutout")
CHAINS = ("default", "decimate2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--frames", type=int, default=45)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--cache-dir", type=Path, default=Path("out/decimation"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    runner = open_runner(args.model or default_model_path(), threads=1)
    config = PreprocessConfig.from_metadata(runner.contract)
    finder = open_face_finder("auto", args.model_dir, config.detect_width_px)
    threshold = float(runner.threshold)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    scores: dict[str, dict[tuple[str, int, int], float]] = {chain: {} for chain in CHAINS}
    for scenario in SCENARIOS:
        for seed in range(args.seeds):
            path = args.cache_dir / f"{scenario}-s{seed}-n{args.frames}.db3"
            if not path.is_file():
                record_synthetic(scenario, seed, args.frames, path)
            for chain in CHAINS:
                with open_with_filters(f"bag:{path}", SourceOptions(timeout_s=2.0), chain) as source:
                    for frame in source:
                        sample = preprocess_frame(frame, finder, config)
                        if sample is None or not sample.passed:
                            continue
                        out = runner.run(sample.rgb[None], sample.depth[None])
                        scores[chain][(scenario, seed, frame.meta.color_frame_number)] = float(out.score[0])
    report: dict[str, object] = {"threshold": threshold, "seeds": args.seeds, "frames_per_recording": args.frames,
                                 "chains": {}}
    for chain in CHAINS:
        per = defaultdict(lambda: [0, 0])
        for (scenario, _, _), score in scores[chain].items():
            per[scenario][0] += 1
            per[scenario][1] += score < threshold
        report["chains"][chain] = {s: {"scored": per[s][0], "pass_alone": per[s][1]} for s in SCENARIOS}
    both = sorted(set(scores["default"]) & set(scores["decimate2"]))
    delta = np.array([scores["decimate2"][k] - scores["default"][k] for k in both])
    flips = sum((scores["default"][k] < threshold) != (scores["decimate2"][k] < threshold) for k in both)
    report["paired"] = {"frames": len(both), "median_abs_delta": float(np.median(np.abs(delta))) if both else None,
                        "max_abs_delta": float(np.max(np.abs(delta))) if both else None, "decision_flips": int(flips)}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
