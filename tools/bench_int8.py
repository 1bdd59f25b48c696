#!/usr/bin/env python3
"""fp32 vs INT8 (Q/DQ) ONNX Runtime latency, side by side.

Runs A and B interleaved (A B A B ...) so that thermal state, frequency scaling and other load hit
both alike, and reports medians over many runs (the median ignores the occasional scheduler hiccup
that would dominate a mean). Usage:

    python tools/bench_int8.py --fp32 model.onnx --int8 model.int8.onnx [--batch 1] [--runs 200] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", required=True)
    parser.add_argument("--int8", required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    from edge.errors import EdgefasError
    from engines.runner import open_runner

    try:
        runners = {"fp32": open_runner(args.fp32, threads=args.threads),
                   "int8": open_runner(args.int8, threads=args.threads)}
    except EdgefasError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    side = runners["fp32"].input_size
    rng = np.random.default_rng(0)
    rgb = rng.random((args.batch, 3, side, side), dtype=np.float32)
    depth = rng.random((args.batch, 1, side, side), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(args.warmup + args.runs):
        for name, runner in runners.items():  # interleaved: A B A B
            start = time.perf_counter()
            runner.run(rgb, depth)
            if i >= args.warmup:
                times[name].append((time.perf_counter() - start) * 1000.0)
    median = {name: statistics.median(values) for name, values in times.items()}
    result = {"batch": args.batch, "runs": args.runs, "threads": runners["fp32"].threads,
              "median_ms": median, "p90_ms": {n: float(np.percentile(v, 90)) for n, v in times.items()},
              "speedup_int8": median["fp32"] / median["int8"]}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"batch {args.batch}, {args.runs} interleaved runs, {result['threads']} threads")
        for name in runners:
            print(f"  {name}: median {median[name]:.3f} ms  p90 {result['p90_ms'][name]:.3f} ms")
        print(f"  fp32/int8 latency ratio: {result['speedup_int8']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
