"""The models or runners a benchmark compares, and how each is opened.

A contestant is a label and a :class:`engines.runner.Runner`. ONNX Runtime rows come from model
files; the PyTorch eager row runs the module behind the first fp32 file and is skipped, with the
reason recorded, where torch is not installed. Every runner gets the same intra-op thread count, so
a ratio between rows compares implementations, not thread budgets.

The eager row is opened by a function the caller hands in (:data:`EagerOpener`): torch and the
network live in ``train``, which the runtime never imports; the command line passes
``train.eager.open_eager_runner``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgefasError, MissingExtraError, ModelError

log = logging.getLogger(__name__)

# Opens the PyTorch eager row: (fp32 ONNX file, intra-op threads, checkpoint or None) -> an open
# engines.runner.Runner whose ``weights`` says which weights it runs; MissingExtraError without torch.
EagerOpener = Callable[[Path, int, "Path | None"], object]


@dataclass(frozen=True)
class Contestant:
    """One row of the comparison: ``runner`` is open and belongs to the benchmark until closed."""

    label: str  # "onnxruntime/fp32", "onnxruntime/int8", "torch-eager/fp32", "onnxruntime/int8 face-first"
    backend: str
    precision: str
    model_path: Path
    runner: object  # an engines.runner.Runner
    note: str = ""
    face_first: bool = False  # the face-first path (docs/face-first.md) instead of the whole frame
    single_runner: object | None = None  # the same model with one intra-op thread, for the one-thread mode

    @property
    def path(self) -> str:
        return "face-first" if self.face_first else "full-frame"


@dataclass(frozen=True)
class Skipped:
    """A row that was asked for and could not run here, with the reason (e.g. torch not installed)."""

    label: str
    reason: str


def default_models() -> list[Path]:
    """The bundled ``edge`` model: fp32 and, when it shipped, its INT8 CPU flavour (U8S8, what ONNX Runtime
    runs fast; a flavour refused by its accuracy checks is not shipped). ModelError if fp32 is missing."""
    from engines.bundled import cpu_model_path, default_model_path

    try:
        fp32 = default_model_path("score")
    except ModelError:
        raise ModelError("no bundled default model is installed; pass --model PATH (an .onnx file)") from None
    fastest = cpu_model_path()
    if fastest == fp32:
        log.info("the bundled model ships no INT8 CPU flavour (engines/models/edge-synthetic.checks.json); "
                 "benching fp32 only")
    return [fp32] if fastest == fp32 else [fp32, fastest]


def _unique(label: str, taken: set[str]) -> str:
    candidate, n = label, 2
    while candidate in taken:
        candidate, n = f"{label}#{n}", n + 1
    taken.add(candidate)
    return candidate


PATHS = ("full-frame", "face-first")
FACE_FIRST_SUFFIX = " face-first"


def open_contestants(models: Sequence[Path], threads: int, open_eager: EagerOpener | None = None,
                     torch_checkpoint: Path | None = None, paths: Sequence[str] = ("full-frame",),
                     single_thread: bool = False) -> tuple[list[Contestant], list[Skipped]]:
    """Open an ONNX Runtime runner per model file and path (``paths``: full-frame, face-first), plus
    the eager row (full-frame) for the first fp32 file.

    ``open_eager`` None: no eager row. ``single_thread``: every ONNX Runtime row also gets a runner
    with one intra-op thread (the one-thread mode). On an error every runner opened so far is closed
    before it propagates.
    """
    from engines.metadata import read_metadata
    from engines.runner import open_runner

    contestants: list[Contestant] = []
    skipped: list[Skipped] = []
    taken: set[str] = set()
    try:
        for route in paths:
            if route not in PATHS:
                raise ValueError(f"open_contestants: unknown path {route!r}; use {PATHS}")
            for path in models:
                path = Path(path)
                precision = read_metadata(path).precision
                runner = open_runner(path, backend="onnxruntime", threads=threads)
                single = open_runner(path, backend="onnxruntime", threads=1) if single_thread else None
                suffix = FACE_FIRST_SUFFIX if route == "face-first" else ""
                contestants.append(Contestant(_unique(f"onnxruntime/{precision}{suffix}", taken), "onnxruntime",
                                              precision, path, runner, face_first=route == "face-first",
                                              single_runner=single))
        if open_eager is not None and "full-frame" in paths:  # the eager row is today's pipeline's reference
            fp32 = next((c for c in contestants if c.precision == "fp32"), None)
            if fp32 is None:
                skipped.append(Skipped("torch-eager/fp32", "no fp32 ONNX model was given to rebuild in PyTorch"))
            else:
                try:
                    runner = open_eager(fp32.model_path, threads, torch_checkpoint)
                except MissingExtraError as err:
                    skipped.append(Skipped("torch-eager/fp32", str(err)))
                else:
                    contestants.append(Contestant(_unique("torch-eager/fp32", taken), "torch-eager", "fp32",
                                                  fp32.model_path, runner, runner.weights))
    except EdgefasError:
        close_contestants(contestants)
        raise
    return contestants, skipped


def close_contestants(contestants: Sequence[Contestant]) -> None:
    for contestant in contestants:
        contestant.runner.close()
        if contestant.single_runner is not None:
            contestant.single_runner.close()
