#!/usr/bin/env python3
"""Face-first against full-frame on recordings of both rendered worlds: decisions, scores, depth.

Records each scene once into the bench cache (``edge.bench.feed.prepare_feed``: the software device
writes raw depth in the depth camera's grid, as a camera would), then plays it through both paths in
lockstep (``edge.bench.agreement.compare_paths``) and prints one Markdown row per scene: decision
agreement, score-class agreement, the largest score difference, per-pixel depth differences inside
the face crop window (mm), and the face-first detection schedule (full scans, window scans, the
longest gap between full scans). docs/face-first.md quotes its output.

    python tools/face_first_agreement.py [--frames 300] [--model M.onnx] [--json out.json] \\
        [--model-dir ../shared/data/models] [synthetic:mixed photo:mixed ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SCENES = ("synthetic:mixed", "photo:mixed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", nargs="*", default=list(SCENES), help="rendered scenes (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=300, help="frames recorded and compared per scene")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the bundled edge model ONNX Runtime runs fastest: "
                        "INT8 CPU flavour if shipped, else fp32)")
    parser.add_argument("--model-dir", type=Path, default=None, help="folder holding the YuNet model")
    parser.add_argument("--detector", default="auto")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be at least 1")

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from edge.bench.agreement import compare_paths
    from edge.bench.feed import FeedOptions, prepare_feed
    from edge.errors import EdgefasError

    model = args.model
    if model is None:
        from engines.bundled import cpu_model_path

        model = cpu_model_path()
    feed = FeedOptions(seed=args.seed, width=args.width, height=args.height, frames=args.frames)
    stderr = Console(stderr=True)
    results = {}
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=stderr, disable=not stderr.is_terminal) as bar:
            for scene in args.scenes:
                task = bar.add_task(f"record {scene}", total=args.frames)
                played = prepare_feed(scene, feed, progress=lambda done, total, t=task: bar.update(t, completed=done))
                task = bar.add_task(f"compare {scene}", total=args.frames)
                results[scene] = compare_paths(played, model, args.frames, args.detector, args.model_dir,
                                               progress=lambda done, total, t=task: bar.update(t, completed=done))
    except EdgefasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"model {model}; {args.frames} frames per scene at {args.width}x{args.height}, seed {args.seed}\n")
    print("| scene | decisions agree | score class agrees (frames) | max abs score diff | depth abs diff mm "
          "median / p99 / max | pixels differing | depth on one path only | full / window scans | "
          "longest gap between full scans |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scene, r in results.items():
        med, p99, top = r.depth_diff_mm
        print(f"| {scene} | {r.decision_agreement:.2%} | {r.score_class_agreement:.2%} ({r.both_scored}) | "
              f"{r.max_score_diff:.4f} | {med:.1f} / {p99:.1f} / {top:.0f} | {r.depth_differing:.2%} | "
              f"{r.one_sided:.3%} | {r.full_scans} / {r.window_scans} | {r.longest_full_scan_gap_ms:.0f} ms |")
    for scene, r in results.items():
        states = ", ".join(f"{state} {a}/{b}" for state, (a, b) in r.states.items())
        print(f"\n{scene}: decision states full-frame/face-first: {states}; frames with a face "
              f"{r.face_frames[0]}/{r.face_frames[1]}")
    if args.json is not None:
        args.json.write_text(json.dumps({s: r.to_json() for s, r in results.items()}, indent=2) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
