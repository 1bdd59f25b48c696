"""Putting a model at its operating point: score a labelled dev set, choose the threshold, store it.

The threshold goes into the ONNX file's metadata together with the target that chose it and the
metrics that justify it (DESIGN §6), and a JSON report is written beside the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from calibration.face_stream import StreamCounts, labelled_faces, score_faces
from calibration.threshold import ThresholdChoice, choose_threshold, parse_target, write_det_plot
from edge.errors import ConfigError


@dataclass(frozen=True)
class ThresholdCalibration:
    choice: ThresholdChoice
    model_path: Path  # the ONNX file that now carries the threshold
    report_path: Path
    det_plot_path: Path | None
    frames: int
    skipped: int

    def to_json(self) -> dict[str, object]:
        return {**self.choice.to_json(), "model": str(self.model_path), "report": str(self.report_path),
                "det_plot": str(self.det_plot_path) if self.det_plot_path else None,
                "frames": self.frames, "skipped": self.skipped}


def calibrate_threshold(model_path: str | Path, dataset: str, target: str, out_path: str | Path | None = None,
                        det_plot: str | Path | None = None, detector: str = "auto", seed: int = 0,
                        max_frames: int | None = None,
                        progress: Callable[[int], None] | None = None) -> ThresholdCalibration:
    """Score ``dataset`` with the model, choose the threshold for ``target``, write it into the model.

    ``out_path`` None updates the model in place. Only ONNX files are updated: a TensorRT engine
    takes its threshold from the ONNX it is built from, so calibrate that and rebuild.
    """
    from engines.metadata import read_metadata, write_metadata
    from engines.runner import open_runner

    parsed = parse_target(target)
    model = Path(model_path)
    if model.suffix.lower() != ".onnx":
        raise ConfigError(f"'{model}' is not an .onnx file; calibrate the threshold on the ONNX model and "
                          f"rebuild the engine from it with: edgefas build-engine")
    runner = open_runner(model)
    counts = StreamCounts()
    try:
        faces = labelled_faces(dataset, runner.contract, detector, seed, max_frames, counts)
        scored = score_faces(runner, faces, progress=progress)
    finally:
        runner.close()
    choice = choose_threshold(scored.scores, scored.is_attack, parsed, scored.species)
    out = Path(out_path) if out_path else model
    metadata = read_metadata(model).with_threshold(choice.threshold, str(parsed), choice.report.to_json())
    write_metadata(model, metadata, out)
    report = out.with_suffix(".threshold.json")
    plot = write_det_plot(scored.scores, scored.is_attack, det_plot, scored.species, choice.threshold,
                          title=f"{out.name} on {dataset}") if det_plot else None
    result = ThresholdCalibration(choice, out, report, plot, counts.frames, counts.skipped)
    report.write_text(json.dumps({**result.to_json(), "dataset": dataset}, indent=2, sort_keys=True) + "\n")
    return result
