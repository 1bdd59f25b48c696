"""``edgefas export`` (checkpoint -> ONNX) and ``edgefas build-engine`` (ONNX -> TensorRT engine)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from edge.cli.options import model_option

stdout = Console()


def export(
    model: Path = model_option(..., help="Training checkpoint (.pt) written by edgefas train."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="ONNX file to write (one file, weights inside)."),
    variant: str = typer.Option("score", "--variant",
                                help="score: outputs score + spoof_map; full: also trace_rgb + trace_depth."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Export a checkpoint to ONNX (opset 17) with its preprocessing contract, checked against PyTorch."""
    from edge.errors import check_choice
    from engines.export import VARIANTS

    check_choice(variant, VARIANTS, "--variant")
    from train.checkpoint import export_checkpoint  # the checkpoint format is train's (torch: edgefas[train])

    result = export_checkpoint(model, out, variant)
    if json_out:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    stdout.print(f"wrote {result.onnx_path} ({result.size_bytes / 1e6:.1f} MB, variant {result.variant}, "
                 f"opset {result.opset}, input {result.input_size}px, "
                 f"max |score - PyTorch| {result.parity_max_abs_score:.1e})", soft_wrap=True)


def build_engine(
    onnx: Path = typer.Option(..., "--onnx", help="ONNX model from edgefas export or edgefas calibrate int8."),
    precision: str = typer.Option("fp16", "--precision", help="fp32, fp16 or int8."),
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="Folder for the engine, its manifest and the timing cache."),
    calib: Path | None = typer.Option(None, "--calib", exists=True, dir_okay=False,
                                      help="Calibration set (.npz) for INT8 from an fp32 ONNX."),
    workspace_mib: int = typer.Option(1024, "--workspace-mib", min=16, help="TensorRT workspace memory pool limit."),
    max_batch: int = typer.Option(8, "--max-batch", min=1, help="Largest batch the engine accepts."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the equivalent trtexec command and stop."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Build a TensorRT engine for this machine's GPU, with a manifest that pins GPU and TensorRT version."""
    from edge.errors import check_choice
    from engines.tensorrt_build import (
        PRECISIONS,
        BuildRequest,
        build_engine as build,
        check_int8_inputs,
        format_command,
        read_model_metadata,
        trtexec_command,
        uses_explicit_int8,
    )

    check_choice(precision, PRECISIONS, "--precision")
    if calib is not None:  # a damaged set fails now, not after TensorRT has loaded and parsed the model
        from calibration.calibset import load_calibration_set

        load_calibration_set(calib)
    if dry_run:
        request = BuildRequest(onnx, precision, out, calib, workspace_mib, max_batch)
        metadata = read_model_metadata(onnx)
        check_int8_inputs(request, metadata)
        cmd = trtexec_command(request, metadata.input_size, uses_explicit_int8(metadata))
        if json_out:
            typer.echo(json.dumps({"trtexec": cmd, "edgefas": list(request.command())}, indent=2))
        else:
            typer.echo(format_command(cmd))
        return
    from calibration.trt_calibrator import entropy_calibration  # tensorrt and pycuda load only if it runs

    result = build(onnx, precision, out, calib, workspace_mib, max_batch, int8_calibration=entropy_calibration)
    if json_out:
        typer.echo(json.dumps({"engine": str(result.engine_path), "manifest": str(result.manifest_path),
                               "build_s": result.build_s, **result.manifest.to_json()}, indent=2))
        return
    table = Table("engine", "precision", "TensorRT", "GPU", "build s")
    m = result.manifest
    table.add_row(str(result.engine_path), m.precision, m.tensorrt_version, f"{m.gpu_name} ({m.compute_capability})",
                  f"{result.build_s:.1f}")
    stdout.print(table)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("build-engine")(build_engine)
