"""Putting a model at its operating point: score a labelled dev split, choose the threshold, store it.

The faces come from a dataset spec (the grammar of ``edgefas eval`` and ``train``: every kind of
:data:`edge.datasets.registry.DATASET_KINDS`, joined with ``+``) at a split, ``dev`` by default,
through :func:`edge.datasets.sampleset.prepare_samples` and its cache; they are scored by
:func:`calibration.scoring.score_samples`. So ``edgefas eval --split dev`` on the same model and
dataset reports metrics on exactly the scores the threshold was chosen from.

The threshold goes into the ONNX file's metadata together with the target that chose it and the
metrics that justify it (DESIGN §6), and a JSON report is written beside the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edge.datasets.registry import check_split
from edge.errors import ConfigError

if TYPE_CHECKING:  # the CLI imports DEFAULT_SPLIT from here to render --help: keep this module light
    from calibration.threshold import ThresholdChoice
    from edge.datasets.sampleset import SampleSet

DEFAULT_SPLIT = "dev"  # a threshold is chosen on data the model was not trained on and is not tested on


@dataclass(frozen=True)
class ThresholdCalibration:
    choice: ThresholdChoice
    model_path: Path  # the ONNX file that now carries the threshold
    report_path: Path
    det_plot_path: Path | None
    dataset: str
    split: str
    frames: int  # frames read from the dataset
    skipped: int  # frames in which no face was found (not scored: at run time they are never a decision)
    # the threshold the target chooses with each person left out in turn (calibration.threshold.held_out_thresholds)
    held_out: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {**self.choice.to_json(), "model": str(self.model_path), "report": str(self.report_path),
                "det_plot": str(self.det_plot_path) if self.det_plot_path else None, "dataset": self.dataset,
                "split": self.split, "frames": self.frames, "skipped": self.skipped,
                "threshold_without_each_person": self.held_out}


def frames_read(samples: SampleSet) -> tuple[int, int]:
    """(frames read, frames without a face) from a sample set's provenance (joined sets add their parts)."""
    parts = samples.provenance.get("parts") or [samples.provenance]
    frames = sum(int(p.get("frames", 0)) for p in parts)
    missed = sum(int(p.get("missed_live", 0)) + int(p.get("missed_spoof", 0)) for p in parts)
    return frames, missed


def calibrate_threshold(model_path: str | Path, dataset: str, target: str, out_path: str | Path | None = None,
                        det_plot: str | Path | None = None, detector: str = "auto", split: str = DEFAULT_SPLIT,
                        model_dir: Path | None = None, cache_dir: Path | None = None,
                        on_frame: Callable[[int, int], None] | None = None) -> ThresholdCalibration:
    """Score ``dataset`` at ``split`` with the model, choose the threshold for ``target``, write it into the model.

    ``out_path`` None updates the model in place. Only ONNX files are updated: a TensorRT engine
    takes its threshold from the ONNX it is built from, so calibrate that and rebuild. ``cache_dir``
    None is the samples cache under the one cache root (:mod:`edge.cache`).
    """
    from calibration.scoring import score_samples
    from calibration.threshold import held_out_thresholds, parse_target, write_det_plot
    from edge.datasets.sampleset import prepare_samples
    from edge.face.preprocess import PreprocessConfig
    from engines.metadata import read_metadata, write_metadata
    from engines.runner import open_runner

    parsed = parse_target(target)
    check_split(split, "--split")
    model = Path(model_path)
    if model.suffix.lower() != ".onnx":
        raise ConfigError(f"'{model}' is not an .onnx file; calibrate the threshold on the ONNX model and "
                          f"rebuild the engine from it with: edgefas build-engine")
    runner = open_runner(model, check_threshold=False)  # the stored threshold is what this replaces
    try:
        config = PreprocessConfig.from_metadata(runner.contract)
        samples = prepare_samples(dataset, split, config, detector, model_dir, cache_dir, on_frame)
        scored = score_samples(runner, samples)
    finally:
        runner.close()
    choice = scored.choose_threshold(parsed)
    out = Path(out_path) if out_path else model
    metadata = read_metadata(model, check_threshold=False).with_threshold(choice.threshold, str(parsed),
                                                                          choice.report.to_json())
    write_metadata(model, metadata, out)
    report = out.with_suffix(".threshold.json")
    plot = write_det_plot(scored.scores, scored.is_attack, det_plot, scored.species, choice.threshold,
                          title=f"{out.name} on {dataset} [{split}]") if det_plot else None
    frames, skipped = frames_read(samples)
    held_out = held_out_thresholds(scored.scores, scored.is_attack, parsed, scored.species, samples.subject)
    result = ThresholdCalibration(choice, out, report, plot, dataset, split, frames, skipped, held_out)
    report.write_text(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
    return result
