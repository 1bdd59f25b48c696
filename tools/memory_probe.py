"""Resident memory of a live session over many frames: does it level off?

Runs the live pipeline in this process (source, detector, model, policy; no sinks) and prints the
process's RSS and the number of Python objects every ``--every`` frames. A leak shows as RSS and the
object count rising to the end; allocator warm-up shows as a rise that levels off. Run it beside a
load (e.g. two ``python -c "while True: pass"``) to see the overloaded case.

    python tools/memory_probe.py --source synthetic:mixed --seed 8 --frames 3000
"""

from __future__ import annotations

import argparse
import gc
import os
from pathlib import Path

from edge.live.session import LiveOptions, LiveSession


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:  # Linux: resident pages are the second field
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="synthetic:mixed")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--model-dir", type=Path, default=None)
    args = ap.parse_args()
    options = LiveOptions(spec=args.source, seed=args.seed, frames=args.frames, model_dir=args.model_dir)
    print("frame rss_mib python_objects")
    with LiveSession(options) as session:
        for index, _ in enumerate(session):
            if index % args.every == 0:
                print(index, f"{rss_mib():.1f}", len(gc.get_objects()), flush=True)
    print("end", f"{rss_mib():.1f}", len(gc.get_objects()))


if __name__ == "__main__":
    main()
