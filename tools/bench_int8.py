#!/usr/bin/env python3
"""fp32 vs INT8 (Q/DQ) ONNX Runtime CPU latency, side by side.

All models run interleaved (A B C A B C ...) so that thermal state, frequency scaling and other load
hit them alike, and the report gives medians over many runs (the median ignores the occasional
scheduler hiccup that would dominate a mean) and each INT8 model's fp32/int8 latency ratio. On a
shared machine quote the ratios, not the milliseconds. Usage:

    python tools/bench_int8.py --fp32 model.onnx --int8 a.int8.onnx [--int8 b.int8.onnx] [--threads 1]
    python tools/bench_int8.py --fp32 model.onnx --calib calib.npz   # quantises both flavours first

With ``--calib`` the fp32 model is quantised into a temporary folder in both flavours of
``engines.quantize`` (``tensorrt``: symmetric S8S8, ``cpu``: U8S8) and both are measured. With
``--holdout SET.npz`` (a calibration-format set the calibration never saw) each INT8 model's
decisions are also compared with fp32 by the accuracy gate, at the fp32 median score of that set:
half the samples on each side, the hardest place for agreement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np


def quantised_flavours(fp32: str, calib: str, work: Path, limit: int | None) -> dict[str, str]:
    from calibration.calibset import load_calibration_set
    from engines.quantize import INT8_TARGETS, quantize_int8

    calib_set = load_calibration_set(calib)
    return {f"int8-{target}": str(quantize_int8(fp32, calib_set, work / f"{target}.onnx", limit=limit,
                                                target=target).onnx_path)
            for target in INT8_TARGETS}


def measure(runners: dict, rgb: np.ndarray, depth: np.ndarray, runs: int, warmup: int) -> dict[str, list[float]]:
    from edge.bench.reference import time_interleaved

    calls = [lambda r=runner: r.run(rgb, depth) for runner in runners.values()]
    times, _ = time_interleaved(calls, runs, warmup, block=1)  # interleaved: A B C A B C
    return dict(zip(runners, times))


def agreement(runners: dict, holdout: str) -> dict[str, dict[str, float]]:
    from calibration.calibset import load_calibration_set
    from engines.accuracy_gate import run_accuracy_gate

    held = load_calibration_set(holdout)
    reference = np.concatenate([runners["fp32"].run(r, d).score for r, d in held.batches(32)])
    threshold = float(np.median(reference))
    out = {}
    for name, runner in runners.items():
        if name != "fp32":
            gate = run_accuracy_gate(runners["fp32"], runner, held.batches(32), threshold)
            out[name] = {"samples": gate.samples, "agreement": gate.agreement,
                         "max_abs_score": gate.max_abs_score, "fp32_score_std": float(np.std(reference))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", required=True)
    parser.add_argument("--int8", action="append", default=[], help="INT8 model (repeatable)")
    parser.add_argument("--calib", help="calibration set: quantise --fp32 in both flavours and add them")
    parser.add_argument("--calib-limit", type=int, default=None, help="calibration samples used (default all)")
    parser.add_argument("--holdout", help="held-out set (.npz): also report decision agreement with fp32")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if not args.int8 and not args.calib:
        parser.error("give --int8 MODEL or --calib SET")

    from edge.errors import EdgefasError
    from engines.runner import open_runner

    with tempfile.TemporaryDirectory(prefix="edgefas-bench-int8-") as work:
        try:
            models = {"fp32": args.fp32}
            for path in args.int8:  # the file's stem, or its whole path where two stems are alike
                models[Path(path).stem if Path(path).stem not in models else path] = path
            if args.calib:
                models.update(quantised_flavours(args.fp32, args.calib, Path(work), args.calib_limit))
            runners = {name: open_runner(path, threads=args.threads) for name, path in models.items()}
        except EdgefasError as err:
            print(f"error: {err}", file=sys.stderr)
            return err.exit_code
        side = runners["fp32"].input_size
        rng = np.random.default_rng(0)
        rgb = rng.random((args.batch, 3, side, side), dtype=np.float32)
        depth = rng.random((args.batch, 1, side, side), dtype=np.float32)
        times = measure(runners, rgb, depth, args.runs, args.warmup)
        agree = agreement(runners, args.holdout) if args.holdout else {}
    median = {name: statistics.median(values) for name, values in times.items()}
    result = {"batch": args.batch, "runs": args.runs, "threads": runners["fp32"].threads,
              "median_ms": median, "p90_ms": {n: float(np.percentile(v, 90)) for n, v in times.items()},
              "speedup": {n: median["fp32"] / median[n] for n in median if n != "fp32"}, "agreement": agree}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"batch {args.batch}, {args.runs} interleaved runs, {result['threads']} threads")
        for name in runners:
            ratio = f"  fp32/int8 {result['speedup'][name]:.2f}x" if name in result["speedup"] else ""
            print(f"  {name:24s} median {median[name]:7.3f} ms  p90 {result['p90_ms'][name]:7.3f} ms{ratio}")
        for name, row in agree.items():
            print(f"  {name:24s} agreement {row['agreement']:.4f} on {row['samples']} held-out samples, "
                  f"max |dscore| {row['max_abs_score']:.2e} (fp32 score std {row['fp32_score_std']:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
