"""``edgefas eval`` and ``edgefas explain``: how well a model separates live faces from attacks, and why."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edge.cli.options import (
    cache_dir_option,
    dataset_spec_option,
    detector_option,
    finite,
    frames_option,
    json_output,
    model_dir_option,
    model_option,
    output_file,
    seed_option,
    source_option,
    split_option,
)
from edge.face.finder import check_detector


def _model_or_default(model: Path | None, variant: str = "score") -> Path:
    from engines.bundled import default_model_path

    return model if model is not None else default_model_path(variant=variant)


def evaluate_command(
    model: Path = model_option(help="ONNX model or TensorRT engine (default: the bundled model)."),
    dataset: str = dataset_spec_option("synthetic:800", note="Labelled data to score, read at --split.",
                                       check=False),  # checked below, with --protocol
    split: str = split_option("test"),
    protocol: str = typer.Option("", "--protocol", help="Protocol for sets that have them (grandtest, LOO_mask, ...)."),
    json_out: Path = typer.Option(None, "--json", callback=json_output,
                                  help="Write the metrics as JSON to this file ('-' = stdout; the table then goes "
                                       "to stderr)."),
    plot: Path = typer.Option(None, "--plot", callback=output_file, help="Write a DET curve (PNG) to this file."),
    threshold: float = typer.Option(None, "--threshold", min=0.0, callback=finite(),
                                    help="Decide at this threshold instead of the model's own."),
    detector: str = detector_option(note="Used on full frames."),
    model_dir: Path = model_dir_option(),
    cache_dir: Path = cache_dir_option("samples"),
) -> None:
    """Score a labelled dataset and report ISO/IEC 30107-3 metrics (APCER per species, BPCER, ACER, EER, AUC)."""
    from calibration.threshold import write_det_plot
    from edge.datasets.registry import check_dataset_spec, with_protocol
    from train.evaluate import evaluate

    check_dataset_spec(with_protocol(dataset, protocol), "--dataset")
    check_detector(detector)
    stderr = Console(stderr=True)
    with Progress(TextColumn("preprocess"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=stderr,
                  disable=not stderr.is_terminal) as bar:
        task = bar.add_task("eval", total=None)
        result = evaluate(_model_or_default(model), dataset, split, protocol, threshold, detector, model_dir,
                          cache_dir, on_frame=lambda i, n: bar.update(task, completed=i, total=n))
    r = result.report
    table = Table(title=f"{result.dataset} [{split}] — {result.model.name} ({result.provider})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in sorted(r["apcer"].items()):
        table.add_row(f"APCER {name} (n={r['n_per_species'].get(name, '?')})", f"{value:.2%}")
    for key, label in (("apcer_max", "APCER worst-case"), ("apcer_pooled", "APCER pooled"), ("bpcer", "BPCER"),
                       ("acer", "ACER (worst-case APCER)"), ("eer", "EER"), ("auc", "AUC")):
        table.add_row(label, f"{r[key]:.2%}" if key != "auc" else f"{r[key]:.4f}")
    table.add_row("threshold", f"{r['threshold']:.4f}")
    table.add_row("live / attack faces", f"{r['n_live']} / {r['n_spoof']}")
    data = result.to_json()  # once: per-person and non-response tables are computed there
    by_person = data["bpcer_by_subject"]
    if by_person:
        worst = max(by_person, key=lambda p: by_person[p]["bpcer"])
        table.add_row(f"BPCER worst person ({len(by_person)} people)",
                      f"{by_person[worst]['bpcer']:.2%} ({worst}, {by_person[worst]['refused']}/{by_person[worst]['scored']})")
    for name, nr in data["non_response"].items():
        if nr["no_face"]:
            table.add_row(f"no face found: {name}", f"{nr['no_face']} ({nr['rate']:.1%})")
    to_stdout = json_out is not None and str(json_out) == "-"
    (stderr if to_stdout else Console()).print(table)
    if to_stdout:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif json_out is not None:
        json_out.write_text(json.dumps(data, indent=2, sort_keys=True))
    if plot is not None:
        write_det_plot(result.scores, result.samples.is_attack.astype(bool), plot, result.samples.pai,
                       threshold=r["threshold"], title=f"DET — {result.model.name} on {result.dataset}")


def explain_command(
    model: Path = model_option(help="A full-variant ONNX model (default: the bundled one)."),
    source: str = source_option("synthetic:print", "--input"),
    out: Path = typer.Option(Path("explain"), "--out", file_okay=False, help="Folder for the PNG pictures."),
    frames: int = frames_option(4, help="How many frames of the source to explain."),
    seed: int = seed_option(),
    detector: str = detector_option(),
    model_dir: Path = model_dir_option(),
) -> None:
    """Write pictures of the RGB and depth spoof traces and the fused spoof map for faces of an input."""
    from train.explain import explain_source

    check_detector(detector)
    count = 0
    for item in explain_source(_model_or_default(model, "full"), source, out, frames, seed, detector, model_dir):
        count += 1
        Console().print(f"{item.path}: score {item.score:.3f} ({'attack' if item.attack else 'live'})"
                        + (f", truth {item.truth}" if item.truth else ""))
    if count == 0:
        Console(stderr=True).print(f"no face found in {frames} frames of {source}")


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate_command)
    app.command("explain")(explain_command)
