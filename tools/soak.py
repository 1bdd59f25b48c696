"""Soak: many frames through the live pipeline with flat memory, the drop count reported.

    python tools/soak.py --frames 20000 --model-dir ../shared/data/models

Rendering the synthetic world costs ~0.1 s per frame here, so the soak first writes a `mixed`
folder dataset of --scenes frames with `edgefas synth`'s writer and then plays it in a loop through
the same `LiveSession` that `edgefas live --headless` runs. RSS is sampled every --every frames;
growth is measured from the first sample after --warmup frames.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import psutil

from edge.capture.synthetic.dataset import write_synthetic_dataset
from edge.live.session import LiveOptions, LiveSession


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--scenes", type=int, default=150)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    proc = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mixed"
        write_synthetic_dataset(folder, args.scenes, seed=7)
        options = LiveOptions(spec=f"folder:{folder}", model=args.model, model_dir=args.model_dir, frames=args.frames,
                              loop=True)
        samples, states = [], {"live": 0, "spoof": 0, "unknown": 0}
        started = time.perf_counter()
        with LiveSession(options) as session:
            for i, result in enumerate(session, start=1):
                states[result.decision.state] += 1
                if i % args.every == 0:
                    samples.append((i, proc.memory_info().rss / 2**20))
            drops = session.drops
        wall = time.perf_counter() - started
    base = next(rss for i, rss in samples if i >= args.warmup)
    peak_after = max(rss for i, rss in samples if i >= args.warmup)
    growth = (samples[-1][1] - base) / base
    report = {"frames": args.frames, "wall_s": wall, "fps": args.frames / wall, "drops": drops, "states": states,
              "rss_mib_after_warmup": base, "rss_mib_end": samples[-1][1], "rss_mib_peak_after_warmup": peak_after,
              "rss_growth_after_warmup": growth, "samples": samples}
    print(f"{args.frames} frames in {wall:.0f} s ({args.frames / wall:.1f} fps); drops {drops}; "
          f"RSS {base:.0f} MiB after warm-up -> {samples[-1][1]:.0f} MiB at the end ({growth:+.2%}); {states}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
