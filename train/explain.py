"""Trace pictures: what the network took to be the spoof trace in each stream (the paper's point).

One PNG per face: the RGB crop, the normalised depth, |trace_rgb|, |trace_depth| and the fused
spoof map, side by side with the score and the decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ModelError
from edge.face.finder import open_face_finder, primary_face
from edge.face.preprocess import PreprocessConfig, crop_and_normalise

TILE = 160


@dataclass(frozen=True)
class Explained:
    path: Path
    score: float
    attack: bool
    truth: str


def _tile(img: np.ndarray, label: str) -> np.ndarray:
    if img.ndim == 2:
        img = cv2.applyColorMap(np.clip(img * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    tile = cv2.resize(img, (TILE, TILE), interpolation=cv2.INTER_NEAREST)
    cv2.putText(tile, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def explain_picture(rgb: np.ndarray, depth: np.ndarray, trace_rgb: np.ndarray, trace_depth: np.ndarray,
                    spoof_map: np.ndarray, caption: str) -> np.ndarray:
    """Five tiles in a row: input RGB, input depth, |RGB trace|, |depth trace|, fused spoof map."""
    color = (np.clip(rgb.transpose(1, 2, 0), 0, 1)[:, :, ::-1] * 255).astype(np.uint8)
    tr = np.abs(trace_rgb).mean(axis=0)
    td = np.abs(trace_depth[0])
    scale = max(float(tr.max()), float(td.max()), 1e-6)
    row = np.hstack([_tile(color, "input rgb"), _tile(depth[0], "input depth"), _tile(tr / scale, "|trace rgb|"),
                     _tile(td / scale, "|trace depth|"), _tile(np.clip(spoof_map[0], 0, 1), "spoof map")])
    bar = np.zeros((22, row.shape[1], 3), np.uint8)
    cv2.putText(bar, caption, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bar, row])


def explain_source(model: Path, spec: str, out_dir: Path, frames: int = 4, seed: int = 0, detector: str = "auto",
                   model_dir: Path | None = None) -> Iterator[Explained]:
    """Run a ``full``-variant ONNX model on faces from ``spec`` and write one picture per face."""
    from edge.capture.source import SourceOptions, open_source
    from engines.runner import open_runner

    runner = open_runner(model)
    try:
        config = PreprocessConfig.from_metadata(runner.contract)
        finder = open_face_finder(detector, model_dir, config.detect_width_px)
        out_dir.mkdir(parents=True, exist_ok=True)
        threshold = runner.threshold if runner.threshold is not None else float("nan")
        with open_source(spec, SourceOptions(seed=seed, max_frames=frames)) as source:
            for frame in source:
                face = primary_face(finder.detect(frame.color_bgr), frame.color_bgr.shape)
                if face is None:
                    continue
                sample = crop_and_normalise(frame, face, config)
                out = runner.run(sample.rgb[None], sample.depth[None])
                if out.trace_rgb is None or out.trace_depth is None:
                    raise ModelError(f"'{model}' returns no traces; export it with: edgefas export --variant full")
                score = float(out.score[0])
                truth = "" if frame.truth is None else (frame.truth.pai or frame.truth.label)
                caption = (f"frame {frame.frame_number}  score {score:.3f}  threshold {threshold:.3f}  "
                           f"{'ATTACK' if score >= threshold else 'live'}" + (f"  (truth: {truth})" if truth else ""))
                pic = explain_picture(sample.rgb, sample.depth, out.trace_rgb[0], out.trace_depth[0], out.spoof_map[0],
                                      caption)
                path = out_dir / f"explain-{frame.frame_number:05d}.png"
                cv2.imwrite(str(path), pic)
                yield Explained(path, score, score >= threshold, truth)
    finally:
        runner.close()
