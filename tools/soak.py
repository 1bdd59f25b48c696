"""Soak: many frames through the live pipeline with flat memory, the drop count reported.

    python tools/soak.py --frames 20000 --model-dir ../shared/data/models --json soak.json

Rendering the synthetic world costs ~0.1 s per frame here, so the soak first writes --scenes
consecutive frames of one ``synthetic:mixed`` video (``edgefas synth --stream``: 1.5 s scenes of
live people, attacks and empty views) and then plays that video in a loop through the same
``LiveSession`` that ``edgefas live --headless`` runs, paced at camera speed (30 fps: the capture
thread drops the oldest frame when the pipeline falls behind, and counts it, as with a camera). RSS is sampled every --every frames;
growth is measured from the first sample after --warmup frames. Decisions are counted per scene
kind (from the video's labels), so the soak also shows whether any attack frame was ever granted.

With ``--source SPEC`` the soak plays that source instead of the video (``--source synthetic:mixed``
renders every frame as ``edgefas live`` does, with the renderer's per-scene allocations in the
process); its frames carry no scene labels. The number of live Python objects is sampled beside RSS:
a leak raises both to the end, allocator warm-up raises RSS and then levels off.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

from edge.capture.folder import LABELS_FILE
from edge.capture.synthetic.dataset import write_synthetic_dataset
from edge.live.session import LiveOptions, LiveSession


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--scenes", type=int, default=900, help="frames of the video that is looped")
    ap.add_argument("--scenario", default="mixed")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-pace", action="store_true", help="read the video as fast as it decodes instead of at "
                    "camera speed (30 fps); the drop count then measures decoding, not the pipeline")
    ap.add_argument("--source", help="play this source spec (e.g. synthetic:mixed) instead of the looped video")
    ap.add_argument("--model", type=Path)
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    proc = psutil.Process()
    rendered, kinds = 0.0, None
    with contextlib.ExitStack() as stack:
        if args.source:
            spec, loop = args.source, False
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "video"
            rendered = time.perf_counter()
            write_synthetic_dataset(folder, args.scenes, seed=args.seed, stream=args.scenario)
            rendered = time.perf_counter() - rendered
            with (folder / LABELS_FILE).open(newline="") as fh:
                kinds = [row["pai"] or row["label"] for row in csv.DictReader(fh)]  # live, none, or the attack
            spec, loop = f"folder:{folder}", True
        options = LiveOptions(spec=spec, model=args.model, model_dir=args.model_dir, frames=args.frames, seed=args.seed,
                              loop=loop, threads=args.threads, pace=not args.no_pace)
        samples, objects, states, by_kind = [], [], Counter(), Counter()
        started = time.perf_counter()
        with LiveSession(options) as session:
            for i, result in enumerate(session, start=1):
                states[result.decision.state] += 1
                if result.frame_number < 0:
                    kind = "fault"  # no frame
                else:
                    kind = kinds[result.frame_number % len(kinds)] if kinds else "unlabelled"
                by_kind[(kind, result.decision.state)] += 1
                if i % args.every == 0:
                    samples.append((i, proc.memory_info().rss / 2**20))
                    objects.append((i, len(gc.get_objects())))
            drops = session.drops
        wall = time.perf_counter() - started
    base = next(rss for i, rss in samples if i >= args.warmup)
    peak_after = max(rss for i, rss in samples if i >= args.warmup)
    growth = (samples[-1][1] - base) / base
    granted_attacks = sum(n for (kind, state), n in by_kind.items()  # None: an unlabelled --source
                          if state == "live" and kind not in ("live", "none")) if kinds else None
    report = {"frames": args.frames, "paced_fps": None if args.no_pace else 30,
              "video": args.source or f"synthetic:{args.scenario} seed {args.seed}, {args.scenes} frames",
              "render_s": rendered, "wall_s": wall, "fps": args.frames / wall, "drops": drops,
              "states": dict(states), "states_by_scene": {f"{k}/{s}": n for (k, s), n in sorted(by_kind.items())},
              "attack_frames_granted": granted_attacks, "rss_mib_after_warmup": base,
              "rss_mib_end": samples[-1][1], "rss_mib_peak_after_warmup": peak_after,
              "rss_growth_after_warmup": growth, "samples": samples, "python_objects": objects}
    print(f"{args.frames} frames in {wall:.0f} s ({args.frames / wall:.1f} fps); drops {drops}; "
          f"RSS {base:.0f} MiB after warm-up -> {samples[-1][1]:.0f} MiB at the end ({growth:+.2%}); "
          f"Python objects {objects[0][1]} -> {objects[-1][1]}; {dict(states)}; attack frames granted: "
          f"{'n/a (unlabelled source)' if granted_attacks is None else granted_attacks}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
