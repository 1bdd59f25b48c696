"""``edgefas bench``: per-stage latency and throughput of the live pipeline, several models side by side."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from edge.cli.options import (
    cache_dir_option,
    depth_filters_option,
    detector_option,
    finite,
    frames_option,
    model_dir_option,
    model_option,
    seed_option,
    source_option,
    threads_option,
    usable_cores,
)
from edge.cli.progress import named_bars
from edge.errors import check_choice
from edge.face.finder import check_detector

MODE_CHOICES = ("all", "sequential", "overlapped", "process", "pipelined", "one-thread")
ROI_CHOICES = ("both", "on", "off")  # bench rows: both paths side by side, face-first only, full-frame only


def bench(
    source: str = source_option("synthetic:mixed", "--camera", note="A synthetic scenario is recorded once "
                                "(cached) and played back through pyrealsense2, filters and align."),
    model: list[Path] = model_option(help="ONNX model; repeat to compare several (default: the bundled edge "
                                     "model, fp32 and INT8)."),
    frames: int = frames_option(300, help="Timed frames per model and mode."),
    warmup: int = typer.Option(30, "--warmup", min=0, help="Untimed frames per model before timing."),
    json_out: Path = typer.Option(None, "--json", dir_okay=False,
                                  help="Write the full report as JSON to this file ('-' = stdout)."),
    mode: str = typer.Option("all", "--mode", help="sequential (per-stage breakdown), overlapped (capture on its "
                             "own thread: real throughput), process (capture, filters and align in a child "
                             "process: `live --capture-process`), pipelined (overlapped, and the model on its own "
                             "thread one frame behind detection), one-thread (sequential with one runner thread "
                             "and one OpenCV thread: a machine with one free core), all five, or several "
                             "separated by commas (sequential,one-thread)."),
    roi: str = typer.Option("both", "--roi", help="Which pipeline: both (default: today's full-frame rows and "
                            "face-first rows of every model, interleaved in one run, with their ratios), on (face "
                            "first only) or off (full frame only). See `edgefas live --roi`."),
    threads: int = threads_option("Intra-op threads of every runner (default: usable cores - 1, so capture keeps "
                                  "a core)."),
    cv_threads: int = typer.Option(None, "--cv-threads", min=1, max=usable_cores(),
                                   help="OpenCV threads (detection, resizing) during the run (default: OpenCV's own "
                                   "choice)."),
    eager: bool = typer.Option(True, "--eager/--no-eager", help="Add a PyTorch eager row for the first fp32 model "
                               "(skipped with the reason when torch is not installed)."),
    reference: bool = typer.Option(True, "--reference/--no-reference", help="Time a MiniFASNetV2-sized network "
                                   "(built here with random weights, cached; needs the onnx package of the train "
                                   "extra, skipped with the reason otherwise) model-only, batch 1, interleaved with "
                                   "every model file, and print each model's time and MACs over the reference's."),
    torch_checkpoint: Path = typer.Option(None, "--torch-checkpoint", exists=True, dir_okay=False,
                                          help="Weights for the eager row (default: a "
                                          "fresh initialisation of the model's preset)."),
    detector: str = detector_option(),
    model_dir: Path = model_dir_option(),
    seed: int = seed_option(8, help="Seed of a synthetic scene (8: the first 6 s of 'mixed' all show a face: live, "
                            "print, cutout, print)."),
    # at most 1280x720: the largest mode a D435's depth and colour streams share (Intel D400 datasheet),
    # and both streams of a synthetic recording are rendered at this size (edge/capture/synthetic/rig.py)
    width: int = typer.Option(640, "--width", min=64, max=1280, help="Colour width of a synthetic recording."),
    height: int = typer.Option(480, "--height", min=48, max=720, help="Colour height of a synthetic recording."),
    record_frames: int = typer.Option(90, "--record-frames", min=1, help="Frames recorded from a synthetic scene "
                                      "(played in a loop)."),
    extra_faces: int = typer.Option(0, "--extra-faces", min=0, max=6,
                                    help="Bystander faces added to a synthetic scene."),
    cache_dir: Path = cache_dir_option("bench"),
    target_fps: float = typer.Option(30.0, "--target-fps", min=1.0, callback=finite(), help="Frame-rate budget."),
    max_host_share: float = typer.Option(0.40, "--max-host-share", min=0.0, max=1.0, callback=finite(),
                                         help="Budget for the share of a frame spent outside the model."),
    depth_filters: str = depth_filters_option("--filters"),
    block: int = typer.Option(None, "--block", min=4, help="Consecutive frames one model gets before the next "
                              "takes over (default: one loop of a synthetic recording, so every model sees the same "
                              "frames; 32 for other sources). The first 3 frames of a block are not timed in the "
                              "overlapped and process modes, so no row inherits another's prefetched frames."),
    stall_timeout: float = typer.Option(5.0, "--stall-timeout", min=0.1, callback=finite(),
                                        help="Seconds without a frame before the run ends with an error (a camera "
                                        "or recording that stopped); raise it on a busy machine."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when no model meets the budget."),
) -> None:
    """Time every stage of the live pipeline (median, p90), end-to-end fps and the model's share of the machine."""
    from edge.bench.contestants import PATHS
    from edge.bench.feed import FeedOptions
    from edge.bench.report import BenchOptions, run_bench
    from edge.bench.stream import MODES

    modes = tuple(check_choice(m.strip(), MODE_CHOICES, "--mode") for m in mode.split(","))
    check_choice(roi, ROI_CHOICES, "--roi")
    check_detector(detector)
    open_eager = None
    if eager:
        from train.eager import open_eager_runner  # torch itself is imported only when the row opens

        open_eager = open_eager_runner
    options = BenchOptions(
        spec=source, models=tuple(model or ()), frames=frames, warmup=warmup,
        modes=MODES if "all" in modes else tuple(dict.fromkeys(modes)), threads=threads, open_eager=open_eager,
        torch_checkpoint=torch_checkpoint,
        detector=detector, model_dir=model_dir, cache_dir=cache_dir, target_fps=target_fps,
        max_host_share=max_host_share, filters=depth_filters, cv_threads=cv_threads, block=block,
        reference=reference, stall_timeout_s=stall_timeout,
        paths={"both": PATHS, "on": ("face-first",), "off": ("full-frame",)}[roi],
        feed=FeedOptions(seed=seed, width=width, height=height, frames=record_frames, extra_faces=extra_faces),
    )
    stderr = Console(stderr=True)
    with named_bars() as progress:
        report = run_bench(options, progress)
    data = report.to_json()
    if json_out is not None and str(json_out) == "-":
        print(json.dumps(data, indent=2))
    else:
        render(data, report_console())
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            stderr.print(f"wrote {json_out}")
    if check and not any(all(m.values()) for met in data["budget"]["met"].values() for m in met.values()):
        stderr.print(f"[bold red]budget missed:[/] no model reaches {target_fps:g} fps with at most "
                     f"{max_host_share:.0%} of the frame outside the model")
        raise typer.Exit(1)


# The stage tables have 11 columns; at rich's 80-column default for a file or pipe every label is cut.
FILE_WIDTH = 160


def report_console() -> Console:
    """stdout for the report: the terminal's width, or FILE_WIDTH when written to a file or pipe
    (unless COLUMNS says otherwise), so a saved report keeps its model names and numbers."""
    console = Console(soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(soft_wrap=True, width=FILE_WIDTH)
    return console


def _ms(stats: dict) -> str:
    median, p90 = stats["median_ms"], stats["p90_ms"]
    if median is None or (isinstance(median, float) and math.isnan(median)):
        return "-"
    return f"{median:.1f} ({p90:.1f})"


def render(data: dict, out: Console) -> None:
    """Tables of the report: one per mode (stage medians with p90), then ratios, ceiling and budget.

    "host ms" is the median time per scored frame outside the model (interval less inference), "host"
    the same as a share of those frames' median interval; "host share"
    in the model table is the sequential stage breakdown's (host stage medians over all medians).
    """
    machine = data["machine"]
    out.print(f"{data['spec']} -> {data['played']}; {machine['cpu_model']}, {machine['cores_usable']} cores, "
              f"{data['threads']} runner threads, {data['opencv_threads']} OpenCV threads, filters {data['filters']}, "
              f"load {machine['load_avg_start'][0]:.2f} -> "
              f"{data['load_avg_end'][0]:.2f}")
    labels = data["stage_labels"]
    out.print("stages: " + ", ".join(f"{key} = {text}" for key, text in labels.items()))
    modes = list(dict.fromkeys(m for c in data["contestants"] for m in c["modes"]))
    for mode in modes:
        table = Table(title=f"{mode}: median (p90) ms per stage", title_justify="left")
        table.add_column("model")
        for key in labels:
            table.add_column(key, justify="right")
        table.add_column("frame", justify="right")
        table.add_column("fps", justify="right")
        table.add_column("host", justify="right")
        table.add_column("host ms", justify="right")
        for c in data["contestants"]:
            if mode not in c["modes"]:
                continue  # the eager row has no one-thread runner
            r = c["modes"][mode]
            table.add_row(c["label"], *(_ms(r["stages"][s]) for s in labels), _ms(r["interval_ms"]), _num(r["fps"], "{:.1f}"),
                          _num(r["frame_host_share"], "{:.0%}"), _num(r["host_ms"], "{:.1f}"))
        out.print(table)
    summary = Table(title="model", title_justify="left")
    for column in ("model", "GMACs", "params", "achieved GFLOP/s", "of ceiling", "host share", "budget met in"):
        summary.add_column(column, justify="left" if column == "model" else "right")
    for c in data["contestants"]:
        cost = c["cost"]
        met = data["budget"]["met"][c["label"]]
        summary.add_row(c["label"], "-" if cost["macs"] is None else f"{cost['macs'] / 1e9:.3f}",
                        "-" if cost["params"] is None else f"{cost['params'] / 1e6:.3f} M",
                        _num(c["achieved_gflops"], "{:.1f}"), _num(c["ceiling_fraction"], "{:.1%}"),
                        _num(c["host_share"], "{:.0%}"),
                        ", ".join(m for m, ok in met.items() if all(ok.values())) or "-")
    out.print(summary)
    out.print(f"matmul ceiling ({data['ceiling']['before']['library']}, {data['threads']} threads): "
              f"{data['ceiling']['median_gflops']:.1f} GFLOP/s")
    for name, ratio in data["ratios"].items():
        out.print(ratio_line(name, ratio))
    if data["reference"] is not None:
        render_reference(data["reference"], out)
    for s in data["skipped"]:
        out.print(f"skipped {s['label']}: {s['reason']}")


def render_reference(ref: dict, out: Console) -> None:
    """Model-only times of the models under test and the reference, and each model over the reference."""
    table = Table(title=f"model only (batch 1, {ref['threads']} threads, interleaved): median (p90) ms",
                  title_justify="left")
    for column in ("model", "median (p90) ms", "GMACs", "params", "ms / reference", "MACs / reference"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in ref["rows"]:
        cost, ratio = row["cost"], row.get("over_reference", {})
        table.add_row(row["label"], _ms(row["ms"]), "-" if cost["macs"] is None else f"{cost['macs'] / 1e9:.3f}",
                      "-" if cost["params"] is None else f"{cost['params'] / 1e6:.3f} M",
                      _num(ratio.get("ms_ratio"), "{:.2f}x"), _num(ratio.get("macs_ratio"), "{:.2f}x"))
    out.print(table)
    published = ref["published"]
    out.print(f"{ref['label']}: random weights, built here; published {published['params'] / 1e6:.2f} M params, "
              f"{published['macs'] / 1e9:.3f} GMACs ({published['source']})")


def _num(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def ratio_line(name: str, ratio: dict) -> str:
    """One comparison's ratios; one that could not be measured (a mode where no face was scored) is '-'."""
    return f"{name}: " + ", ".join(f"{k} " + _num(v, "{:.2f}x") for k, v in ratio.items())


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
