#!/usr/bin/env python3
"""Scaling of the live pipeline with input resolution and faces in view, and the per-stage plot.

Runs ``edge.bench.report.run_bench`` once per condition with one model (default: the bundled
``edge`` model ONNX Runtime runs fastest on a CPU, ``engines.bundled.cpu_model_path``), today's
full-frame pipeline and the face-first one (docs/face-first.md) as rows of the same run, and prints
a Markdown table: frames per second (sequential and overlapped), frame latency and the
face-first/full-frame ratio against colour resolution (640x480, 848x480, 1280x720 of
``synthetic:mixed``) and against the number of faces in view (1, 2, 4: ``synthetic:live`` with 0,
1 and 3 bystanders, the primary face pinned at 0.6 m). Writes a stacked-bar PNG of the sequential
per-stage medians of every condition and path. Synthetic scenes are recorded once into the bench
cache before anything is timed.

    python tools/bench_scaling.py [--model M.onnx] [--frames 200] [--png docs/img/bench-stages.png] \
        [--json scaling.json] [--model-dir ../shared/data/models] [--resolutions-only] [--roi both|on|off]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

RESOLUTIONS = ((640, 480), (848, 480), (1280, 720))  # D435 colour modes (Intel D400 datasheet, table 4-5)
FACES = (1, 2, 4)
FACES_DISTANCE_M = 0.6  # the primary face of the faces sweep: a kiosk user at arm's length
STAGE_COLOURS = {"capture": "#9e9e9e", "align": "#5c6bc0", "detect": "#26a69a", "region": "#ab47bc",
                 "crop": "#ffa726", "infer": "#ef5350", "decide": "#8d6e63"}
PATHS = {"both": ("full-frame", "face-first"), "on": ("face-first",), "off": ("full-frame",)}


@dataclass(frozen=True)
class Condition:
    name: str  # row label
    spec: str
    width: int
    height: int
    extra_faces: int
    distance_m: float | None


def conditions(resolutions_only: bool = False) -> list[Condition]:
    rows = [Condition(f"{w}x{h}", "synthetic:mixed", w, h, 0, None) for w, h in RESOLUTIONS]
    if resolutions_only:
        return rows
    rows += [Condition(f"{n} face{'s' if n > 1 else ''}", "synthetic:live", 640, 480, n - 1, FACES_DISTANCE_M)
             for n in FACES]
    return rows


def run(args: argparse.Namespace) -> list[dict]:
    from edge.bench.feed import FeedOptions
    from edge.bench.report import BenchOptions, run_bench

    models = (Path(args.model),) if args.model else ()
    if not models:
        from engines.bundled import cpu_model_path

        models = (cpu_model_path(),)
    results = []
    for cond in conditions(args.resolutions_only):
        feed = FeedOptions(seed=args.seed, width=cond.width, height=cond.height, frames=args.record_frames,
                           extra_faces=cond.extra_faces, distance_m=cond.distance_m)
        report = run_bench(BenchOptions(spec=cond.spec, models=models, frames=args.frames, warmup=args.warmup,
                                        threads=args.threads, detector=args.detector,
                                        model_dir=args.model_dir, feed=feed, cache_dir=args.cache_dir,
                                        ceiling_runs=5, modes=("sequential", "overlapped"),
                                        paths=PATHS[args.roi]))
        data = report.to_json()
        for row in data["contestants"]:
            results.append({"condition": cond.name, "spec": cond.spec, "width": cond.width, "height": cond.height,
                            "faces_rendered": cond.extra_faces + 1 if cond.spec == "synthetic:live" else None,
                            "label": row["label"], "path": row["path"], "host_share": row["host_share"],
                            "modes": row["modes"], "ratios": data["ratios"], "load_avg_start":
                            data["machine"]["load_avg_start"], "load_avg_end": data["load_avg_end"],
                            "threads": data["threads"]})
        print(f"{cond.name}: done", file=sys.stderr)
    return results


def _ms(stats: dict) -> str:
    value = stats["median_ms"]
    return "-" if value is None else f"{value:.1f}"


def markdown(results: list[dict]) -> str:
    head = ("| condition | path | fps sequential | fps overlapped | face-first / full-frame fps (seq / ovl) | "
            "frame ms median (p90), sequential | detect ms | align ms | region ms | infer ms | "
            "host share (seq / ovl) | faces found | frames with a face |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in results:
        seq, ovl = r["modes"]["sequential"], r["modes"]["overlapped"]
        st = seq["stages"]
        label = r["label"]
        ratio = r.get("ratios", {}).get(f"{label} vs {label.removesuffix(' face-first')}")
        ratio_text = "-" if not ratio else f"{ratio['fps_ratio_sequential']:.2f} / {ratio['fps_ratio_overlapped']:.2f}"
        lines.append(f"| {r['condition']} | {r.get('path', 'full-frame')} | {seq['fps']:.1f} | {ovl['fps']:.1f} | "
                     f"{ratio_text} | {seq['interval_ms']['median_ms']:.1f} ({seq['interval_ms']['p90_ms']:.1f}) | "
                     f"{_ms(st['detect'])} | {_ms(st['align'])} | {_ms(st.get('region', {'median_ms': None}))} | "
                     f"{_ms(st['infer'])} | {r['host_share']:.0%} / {ovl['frame_host_share']:.0%} | "
                     f"{seq['faces_found']:g} | {seq['face_fraction']:.0%} |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path, budget_ms: float = 1000.0 / 30.0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edge.bench.stages import STAGE_LABELS, STAGES

    names = [f"{r['condition']} {r.get('path', 'full-frame')}" for r in results]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(results) + 2.0), dpi=110)
    left = [0.0] * len(results)
    for stage in STAGES:
        widths = [r["modes"]["sequential"]["stages"].get(stage, {}).get("median_ms") or 0.0 for r in results]
        ax.barh(names, widths, left=left, color=STAGE_COLOURS[stage], label=STAGE_LABELS[stage])
        left = [a + b for a, b in zip(left, widths)]
    ax.axvline(budget_ms, color="black", linestyle="--", linewidth=1)
    ax.text(budget_ms, len(results) - 0.4, " 30 fps budget", fontsize=8, va="center")
    ax.invert_yaxis()
    ax.set_xlabel("median ms per stage (sequential mode: the stages one after another on one thread)")
    ax.set_title(f"edgefas bench: where a frame's time goes ({results[0]['label']})", fontsize=10)
    ax.legend(ncol=6, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="ONNX model (default: the bundled INT8 edge model)")
    parser.add_argument("--frames", type=int, default=200, help="timed frames per condition and mode")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--record-frames", type=int, default=90)
    parser.add_argument("--detector", default="auto")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="recordings cache (default: bench under $EDGEFAS_CACHE or ~/.cache/edgefas)")
    parser.add_argument("--png", type=Path, default=None,
                        help="also draw the per-stage picture here (docs/img/bench-stages.png is the documented one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--from-json", type=Path, default=None, help="plot and tabulate earlier results, run nothing")
    parser.add_argument("--resolutions-only", action="store_true", help="only the resolution rows, not the faces sweep")
    parser.add_argument("--roi", choices=tuple(PATHS), default="both",
                        help="pipelines per condition: both (side by side in one run), on (face first), off")
    args = parser.parse_args(argv)

    from edge.errors import EdgefasError

    try:
        results = json.loads(args.from_json.read_text()) if args.from_json else run(args)
    except EdgefasError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except (OSError, json.JSONDecodeError) as err:
        print(f"error: --from-json {args.from_json}: cannot read earlier results ({err}); pass a file that "
              f"--json wrote", file=sys.stderr)
        return 2
    if args.json and not args.from_json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    if args.png is not None:
        print(f"wrote {plot(results, args.png)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
