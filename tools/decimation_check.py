"""Does the model decide the same whatever depth filter chain fed it? Scores of one set of recordings.

    python tools/decimation_check.py --seeds 4 --frames 45 --model-dir ../shared/data/models --json out.json
    python tools/decimation_check.py --chains default,decimate2,raw,direct ...

Records ``--seeds`` seeded scenes of every scenario through the software device (raw depth in the
depth camera's grid, as a camera records it; cached under --cache-dir) and plays each recording
through each chain of ``--chains``: the product's default depth filters (spatial + temporal),
``decimate2`` (2x decimation first), ``raw`` (no filter, alignment only), or ``direct`` (the same
frames straight from the renderer, without librealsense: the path the training samples took). Every
frame goes through the same face finder, preprocessing and runner. Reports, per chain and scenario,
how many frames passed the quality gates and were scored, and how many would pass as live on their
own (score below the model's threshold); then, for every chain against the first, the score change
and decision flips on the frames both scored.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from edge.capture.playback import open_with_filters
from edge.capture.rs_pipeline import FILTER_CHAINS
from edge.capture.software_device import record_synthetic
from edge.capture.source import SourceOptions, open_source
from edge.face.finder import open_face_finder
from edge.face.preprocess import PreprocessConfig, preprocess_frame
from engines.bundled import default_model_path
from engines.runner import open_runner

SCENARIOS = ("live", "print", "replay", "mask", "cutout")
CHAIN_CHOICES = (*FILTER_CHAINS, "direct")


def open_chain(chain: str, path: Path, scenario: str, seed: int, frames: int):
    if chain == "direct":
        return open_source(f"synthetic:{scenario}", SourceOptions(seed=seed, max_frames=frames))
    return open_with_filters(f"bag:{path}", SourceOptions(timeout_s=2.0), chain)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--frames", type=int, default=45)
    ap.add_argument("--chains", default="default,decimate2",
                    help=f"comma-separated, the first is the reference; from {', '.join(CHAIN_CHOICES)}")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--cache-dir", type=Path, default=Path("out/decimation"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    chains = [c.strip() for c in args.chains.split(",") if c.strip()]
    unknown = [c for c in chains if c not in CHAIN_CHOICES]
    if unknown or not chains:
        ap.error(f"--chains: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(CHAIN_CHOICES)}")
    runner = open_runner(args.model or default_model_path(), threads=1)
    config = PreprocessConfig.from_metadata(runner.contract)
    finder = open_face_finder("auto", args.model_dir, config.detect_width_px)
    threshold = float(runner.threshold)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    # (scenario, seed, frame time) -> score; the time stamp is the renderer's, kept by the recording
    scores: dict[str, dict[tuple[str, int, int], float]] = {chain: {} for chain in chains}
    gated: dict[str, dict[str, int]] = {chain: defaultdict(int) for chain in chains}
    for scenario in SCENARIOS:
        for seed in range(args.seeds):
            path = args.cache_dir / f"{scenario}-s{seed}-n{args.frames}.db3"
            if not path.is_file():
                record_synthetic(scenario, seed, args.frames, path)
            for chain in chains:
                with open_chain(chain, path, scenario, seed, args.frames) as source:
                    for frame in source:
                        sample = preprocess_frame(frame, finder, config)
                        if sample is None:
                            continue
                        if not sample.passed:
                            gated[chain][f"{scenario}:{sample.gate}"] += 1
                            continue
                        out = runner.run(sample.rgb[None], sample.depth[None])
                        scores[chain][(scenario, seed, round(frame.t_ms))] = float(out.score[0])
    report: dict[str, object] = {"threshold": threshold, "seeds": args.seeds, "frames_per_recording": args.frames,
                                 "reference": chains[0], "chains": {}, "gated": {}, "paired": {}}
    for chain in chains:
        per = defaultdict(lambda: [0, 0])
        for (scenario, _, _), score in scores[chain].items():
            per[scenario][0] += 1
            per[scenario][1] += score < threshold
        report["chains"][chain] = {s: {"scored": per[s][0], "pass_alone": per[s][1]} for s in SCENARIOS}
        report["gated"][chain] = dict(sorted(gated[chain].items()))
    reference = scores[chains[0]]
    for chain in chains[1:]:
        both = sorted(set(reference) & set(scores[chain]))
        delta = np.array([scores[chain][k] - reference[k] for k in both])
        flips = [k for k in both if (reference[k] < threshold) != (scores[chain][k] < threshold)]
        report["paired"][chain] = {
            "frames": len(both), "median_abs_delta": float(np.median(np.abs(delta))) if both else None,
            "max_abs_delta": float(np.max(np.abs(delta))) if both else None, "decision_flips": len(flips),
            "flips": [f"{s} seed {d} t={t} ms" for s, d, t in flips[:20]]}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
