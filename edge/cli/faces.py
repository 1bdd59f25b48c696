"""``edgefas faces`` (faces in image files) and ``edgefas models`` (installed detector models)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from edge.cli.options import detector_option, model_dir_option
from edge.face.finder import check_detector

stdout = Console()


def _face_json(face) -> dict:
    return {
        "box_xyxy": [round(float(v), 2) for v in (face.x0, face.y0, face.x1, face.y1)],
        "landmarks_xy": [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks_xy],
        "score": None if math.isnan(face.score) else round(float(face.score), 4),
        "detector": face.detector,
    }


def faces(
    paths: list[Path] = typer.Argument(..., help="Image files (PNG, JPEG, ...)."),
    detector: str = detector_option(),
    json_out: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
    crops: Path | None = typer.Option(None, "--crops", file_okay=False,
                                      help="Write the colour crops a model would see (PNG) here."),
    model_dir: Path | None = model_dir_option(),
) -> None:
    """Show the faces found in image files: box, 5 landmarks, score and detector."""
    from edge.face.finder import open_face_finder
    from edge.face.image_files import find_faces_in_images
    from edge.face.preprocess import PreprocessConfig

    check_detector(detector)
    config = PreprocessConfig()
    finder = open_face_finder(detector, model_dir=model_dir, detect_width_px=config.detect_width_px)
    results = find_faces_in_images(paths, finder, config, crops)
    if json_out:
        payload = [{"path": str(r.path), "width_px": r.width_px, "height_px": r.height_px,
                    "faces": [_face_json(f) for f in r.faces], "crops": [str(p) for p in r.crop_paths]}
                   for r in results]
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table("file", "face", "box x0,y0,x1,y1", "score", "detector", "landmarks (R eye, L eye, nose, mouth R, L)")
    for result in results:
        if not result.faces:
            table.add_row(result.path.name, "-", "no face", "", finder.name, "")
        for index, face in enumerate(result.faces):
            table.add_row(result.path.name, str(index),
                          ",".join(f"{v:.0f}" for v in (face.x0, face.y0, face.x1, face.y1)),
                          f"{face.score:.3f}", face.detector,
                          " ".join(f"({x:.0f},{y:.0f})" for x, y in face.landmarks_xy))
    stdout.print(table)
    if crops is not None:
        stdout.print(f"crops written to {crops}")


def models(
    model_dir: Path | None = model_dir_option(),
    json_out: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
) -> None:
    """Show which face-detector models are installed, their sha256 and whether it is a known release."""
    from edge.face.model_store import YUNET_SOURCE, installed_models, model_dirs

    found = installed_models(model_dir)
    searched = [str(d) for d in model_dirs(model_dir)]
    if json_out:
        typer.echo(json.dumps({
            "searched": searched,
            "models": [{"path": str(m.path), "size_bytes": m.size_bytes, "sha256": m.sha256, "release": m.release,
                        "loads": m.problem is None, "problem": m.problem, "used": i == 0} for i, m in enumerate(found)],
            "haar_fallback": "built into opencv-python 4.x",
        }, indent=2))
        return
    table = Table("path", "sha256", "release", "loads", "used")
    for index, model in enumerate(found):
        table.add_row(str(model.path), model.sha256, model.release, "yes" if model.problem is None else "NO",
                      "yes" if index == 0 else "")
    stdout.print(table if found else "no YuNet model installed: `--detector auto` uses the Haar cascade")
    stdout.print("searched: " + ", ".join(searched), soft_wrap=True)
    for model in found:
        if model.problem is not None:
            stdout.print(f"{model.path}: {model.problem}; replace it with a release from {YUNET_SOURCE}",
                         soft_wrap=True)
    if not found:
        stdout.print(f"get YuNet from {YUNET_SOURCE}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("faces")(faces)
    app.command("models")(models)
