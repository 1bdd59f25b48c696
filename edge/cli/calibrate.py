"""``edgefas calibrate``: collect a calibration set, make an INT8 model, choose the decision threshold."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from calibration.operating_point import DEFAULT_SPLIT
from edge.cli.options import (
    cache_dir_option,
    dataset_spec_option,
    detector_option,
    finite,
    model_dir_option,
    model_option,
    output_file,
    seed_option,
    source_option,
    split_option,
)
from edge.errors import check_choice
from edge.face.finder import check_detector

calibrate_app = typer.Typer(help="Calibration: INT8 calibration sets and models, decision thresholds.",
                            no_args_is_help=True)
stdout = Console()
stderr = Console(stderr=True)


def _progress(label: str) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=stderr, disable=not stderr.is_terminal)


@calibrate_app.command("collect")
def collect(
    source: str = source_option(...),
    count: int = typer.Option(..., "--count", min=1, help="Faces to keep (frames without a usable face are skipped)."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Calibration set file to write (.npz)."),
    model: Path | None = model_option(help="ONNX model whose preprocessing contract to follow."),
    detector: str = detector_option(),
    seed: int = seed_option(),
    json_out: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Collect preprocessed faces from a camera, recording or dataset into an INT8 calibration set."""
    from calibration.face_stream import collect_calibration_set

    check_detector(detector)
    with _progress("collecting") as bar:
        task = bar.add_task("collect", total=count)
        calib = collect_calibration_set(source, count, out, model, detector, seed,
                                        progress=lambda n: bar.update(task, completed=n))
    if json_out:
        typer.echo(json.dumps({"path": str(calib.path), **calib.provenance.to_json()}, indent=2))
        return
    stdout.print(f"wrote {calib.count} faces ({calib.input_size}px) from {source} to {calib.path} "
                 f"(sha256 {calib.provenance.sha256[:12]}…)", soft_wrap=True)


@calibrate_app.command("int8")
def int8(
    onnx: Path = typer.Option(..., "--onnx", help="fp32 ONNX model from edgefas export."),
    calib: Path = typer.Option(..., "--calib", help="Calibration set from edgefas calibrate collect."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="INT8 (Q/DQ) ONNX file to write."),
    method: str = typer.Option("minmax", "--method", help="Range calibration: minmax, entropy or percentile."),
    threshold: float | None = typer.Option(None, "--threshold", min=0.0, callback=finite(),
                                           help="Decision threshold for the gate "
                                           "(default: the one stored in the model)."),
    max_abs: float = typer.Option(0.05, "--max-abs", min=0.0, callback=finite(),
                                  help="Gate: largest allowed |score difference|."),
    median_abs: float = typer.Option(0.01, "--median-abs", min=0.0, callback=finite(),
                                     help="Gate: largest allowed median |score difference|."),
    min_agreement: float = typer.Option(0.99, "--min-agreement", min=0.0, max=1.0, callback=finite(),
                                        help="Gate: smallest fraction of equal decisions."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
    build: str = typer.Option("tensorrt", "--build", help="tensorrt: symmetric int8 activations, the form TensorRT "
                              "compiles; cpu: uint8 activations, fastest on ONNX Runtime CPU (docs/int8.md)."),
    keep_fp32: str | None = typer.Option(None, "--keep-fp32", help="Parts left in fp32, comma-separated: "
                                         "depth-entry (the depth stream before it meets colour), depth-decoder, "
                                         "decoders, guard (the depth guard, docs/depth-guard.md); or none. Default: depth-entry,depth-decoder, "
                                         "and guard where the model has one (docs/int8.md)."),
) -> None:
    """Quantise to INT8 (Q/DQ) and accept it only past the accuracy gate."""
    from calibration.calibset import load_calibration_set
    from engines.accuracy_gate import GateTolerance
    from engines.quantize import CALIBRATION_METHODS, INT8_TARGETS, parse_fp32_parts, quantize_and_gate

    check_choice(method, CALIBRATION_METHODS, "--method")
    check_choice(build, INT8_TARGETS, "--build")
    parts = None if keep_fp32 is None else parse_fp32_parts(keep_fp32)
    tolerance = GateTolerance(max_abs, median_abs, min_agreement)
    calib_set = load_calibration_set(calib)
    with _progress("calibrating") as bar:
        task = bar.add_task("int8", total=None)
        result, gate = quantize_and_gate(onnx, calib_set, out, method, tolerance, threshold,
                                         progress=lambda n: bar.update(task, completed=n), target=build,
                                         fp32_parts=parts)
    if json_out:
        typer.echo(json.dumps({"quantize": result.to_json(), "gate": gate.to_json()}, indent=2))
        return
    table = Table("INT8 model", "samples", "Q/DQ nodes", "kept fp32", "max |Δ|", "median |Δ|", "agreement", "gate")
    table.add_row(str(result.onnx_path), str(gate.samples), str(result.qdq_nodes), ", ".join(result.fp32_parts) or "none",
                  f"{gate.max_abs_score:.4f}",
                  f"{gate.median_abs_score:.4f}", f"{gate.agreement:.4f}", "accepted")
    stdout.print(table)


@calibrate_app.command("threshold")
def threshold(
    model: Path = model_option(..., help="ONNX model to set the threshold of."),
    dataset: str = dataset_spec_option(..., note="Labelled data to choose the threshold on, read at --split."),
    split: str = split_option(DEFAULT_SPLIT, note="The threshold is chosen on dev by default: never on the "
                              "split a model is trained or tested on."),
    target: str = typer.Option("bpcer@apcer=0.01", "--target",
                               help="Operating point: bpcer@apcer=RATE (or apcer=RATE: lowest BPCER with every "
                                    "species' APCER <= RATE), bpcer=RATE (lowest worst-case APCER with BPCER <= RATE), "
                                    "eer (pooled APCER = BPCER), worst-eer (the worst species' APCER = BPCER) or acer "
                                    "(lowest ACER); RATE a fraction or a percentage (0.01 or 1%)."),
    out: Path | None = typer.Option(None, "--out", callback=output_file,
                                    help="Write the model with its threshold here (default: in place)."),
    det_plot: Path | None = typer.Option(None, "--det-plot", callback=output_file,
                                         help="Also write a DET plot (PNG/PDF/SVG)."),
    detector: str = detector_option(note="Used on full frames."),
    model_dir: Path | None = model_dir_option(),
    cache_dir: Path | None = cache_dir_option("samples"),
    json_out: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Choose the decision threshold on a labelled dataset's dev split at a named operating point and store it
    in the model (the faces and scores of `edgefas eval` on the same split)."""
    from calibration.operating_point import calibrate_threshold
    from calibration.threshold import parse_target

    parse_target(target)  # a bad target fails before any frame is read
    check_detector(detector)
    with _progress("preprocess") as bar:
        task = bar.add_task("samples", total=None)
        result = calibrate_threshold(model, dataset, target, out, det_plot, detector, split, model_dir, cache_dir,
                                     on_frame=lambda i, n: bar.update(task, completed=i, total=n))
    if json_out:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    rep = result.choice.report
    table = Table("target", "threshold", "APCER max (worst species)", "APCER pooled", "BPCER", "EER", "AUC", "live/attack")
    table.add_row(str(result.choice.target), f"{result.choice.threshold:.4f}", f"{rep.apcer_max:.4f}",
                  f"{rep.apcer_pooled:.4f}", f"{rep.bpcer:.4f}", f"{rep.eer:.4f}", f"{rep.auc:.4f}",
                  f"{rep.n_live}/{rep.n_spoof}")
    stdout.print(table)
    stdout.print(f"{result.dataset} [{result.split}]: threshold written to {result.model_path}; "
                 f"report {result.report_path}", soft_wrap=True)
    if result.held_out:
        low, high = min(result.held_out, key=result.held_out.get), max(result.held_out, key=result.held_out.get)
        stdout.print(f"with one of its {len(result.held_out)} people left out the threshold would be "
                     f"{result.held_out[low]:.4f} (without {low}) to {result.held_out[high]:.4f} (without {high}): "
                     f"a wide range means one person sets it; add people to the {result.split} split",
                     soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(calibrate_app, name="calibrate")
