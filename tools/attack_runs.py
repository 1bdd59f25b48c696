"""Seeded kiosk runs against every attack species and live faces: grants, delays, per-frame APCER.

    python tools/attack_runs.py --seeds 20 --seconds 30 --model-dir ../shared/data/models --json out.json

Each run is one ``synthetic:SCENARIO`` stream at 30 fps through the live pipeline and the decision
policy with the default model (or --model). For attacks it counts grants (must be 0) and the
per-frame APCER (frames whose score alone would have passed as live); for live faces the delay
from the first detected face to the grant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edge.live.session import LiveOptions, LiveSession

ATTACKS = ("print", "replay", "mask", "cutout")


def one_run(scenario: str, seed: int, frames: int, model: Path | None, model_dir: Path | None,
            threads: int = 1) -> dict:
    options = LiveOptions(spec=f"synthetic:{scenario}", seed=seed, frames=frames, model=model, model_dir=model_dir,
                          threads=threads)
    grants = scored = passed = 0
    first_face = first_grant = None
    with LiveSession(options) as session:
        for r in session:
            if r.face is not None and first_face is None:
                first_face = r.t_ms
            if r.decision.live:
                grants += 1
                if first_grant is None:
                    first_grant = r.t_ms
                    if scenario == "live":
                        break
            if r.score is not None:
                scored += 1
                passed += r.score < r.decision.threshold
    delay = None if first_grant is None or first_face is None else first_grant - first_face
    return {"scenario": scenario, "seed": seed, "grant_frames": grants, "scored_frames": scored,
            "frames_passing_alone": passed, "grant_delay_ms": delay}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--scenarios", nargs="*", default=["live", *ATTACKS])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--json", type=Path, help="written after every run, so a stopped job keeps its rows")
    ap.add_argument("--threads", type=int, default=1, help="inference threads (1: leaves a core to the renderer)")
    args = ap.parse_args()
    frames = int(round(args.seconds * 30))
    rows = []
    started = time.perf_counter()
    for scenario in args.scenarios:
        for seed in range(args.seeds):
            rows.append(one_run(scenario, seed, frames, args.model, args.model_dir, args.threads))
            r = rows[-1]
            print(f"  {scenario} seed {seed}: grants {r['grant_frames']}, passing alone "
                  f"{r['frames_passing_alone']}/{r['scored_frames']} ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)
            if args.json:
                args.json.write_text(json.dumps({"seconds": args.seconds, "runs": rows}, indent=2))
        runs = [r for r in rows if r["scenario"] == scenario]
        if scenario == "live":
            delays = [r["grant_delay_ms"] for r in runs]
            granted = [d for d in delays if d is not None]
            print(f"live: granted {len(granted)}/{len(runs)}, max delay {max(granted) if granted else float('nan'):.0f} ms")
        else:
            scored = sum(r["scored_frames"] for r in runs)
            passing = sum(r["frames_passing_alone"] for r in runs)
            print(f"{scenario}: runs with a grant {sum(r['grant_frames'] > 0 for r in runs)}/{len(runs)}, "
                  f"per-frame APCER {passing}/{scored} = {passing / max(scored, 1):.2%}")
    print(f"wall {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
