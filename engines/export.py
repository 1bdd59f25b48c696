"""PyTorch module -> ONNX, with the preprocessing contract inside and a parity check against PyTorch.

The module comes from the caller: ``train.checkpoint.export_checkpoint`` rebuilds it from a training
checkpoint (the checkpoint format is the ``train`` package's, which sits above this one).

Exporter choice (see docs/onnx-export.md): the TorchScript-based ("legacy") exporter at opset 17.
torch 2.13's default dynamo exporter needs onnxscript and emits opset 18 even when asked for 17, and
TensorRT 10 on JetPack 6 parses opset 17 well. Torch is imported only inside these functions.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge.digest import file_sha256
from edge.errors import ConfigError, ModelError, import_optional
from engines.metadata import ModelMetadata, set_metadata

log = logging.getLogger(__name__)

OPSET = 17  # TensorRT 10.x ONNX parser support matrix: opsets 9-20 tested, 17 the JetPack 6 sweet spot
VARIANTS = {"score": ("score", "spoof_map"), "full": ("score", "spoof_map", "trace_rgb", "trace_depth")}
PARITY_TOLERANCE = 1e-4  # max |score(ONNX Runtime fp32) - score(PyTorch)|, the acceptance bound


@dataclass(frozen=True)
class ExportResult:
    onnx_path: Path
    variant: str
    opset: int
    input_size: int
    parity_max_abs_score: float  # measured on a random batch of 2 with ONNX Runtime CPU
    sha256: str
    size_bytes: int

    def to_json(self) -> dict[str, object]:
        return {"onnx": str(self.onnx_path), "variant": self.variant, "opset": self.opset,
                "input_size": self.input_size, "parity_max_abs_score": self.parity_max_abs_score,
                "sha256": self.sha256, "size_bytes": self.size_bytes}


def export_module(module, out_path: str | Path, metadata: ModelMetadata, variant: str = "score",
                  seed: int = 0) -> ExportResult:
    """Export a torch module with the ``forward(rgb, depth) -> ModelOutputs`` contract to one ONNX file.

    A module that also has ``forward_fused`` and ``score_needs_traces`` (``SpoofTraceNet``) exports
    its ``score`` variant through ``forward_fused`` when the traces do not enter the score; parity
    is always checked against the module's full ``forward``.

    ``module`` returns a NamedTuple with fields ``score`` [N], ``spoof_map`` [N,1,h,w], ``trace_rgb``,
    ``trace_depth``. The batch axis is dynamic; spatial sides are fixed to ``metadata.input_size``
    (TensorRT builds are fastest with static spatial shapes). The file holds its weights (no external
    data) and ``metadata`` as ``metadata_props``. Parity with PyTorch is checked before returning.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"unknown export variant '{variant}'; use one of: {', '.join(VARIANTS)}")
    torch = import_optional("torch", "train", "exporting a model to ONNX")
    onnx = import_optional("onnx", "train", "exporting a model to ONNX")
    size = int(metadata.input_size)
    if size <= 0:
        raise ValueError(f"metadata.input_size must be a positive side length, got {size}")
    names = VARIANTS[variant]

    class _Exported(torch.nn.Module):
        """Picks the variant's outputs by name so the graph has exactly those outputs, in order."""

        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, rgb, depth):
            out = self.score_path(rgb, depth) if self.score_path is not None else self.model(rgb, depth)
            return tuple(getattr(out, n) for n in names)

    wrapper = _Exported(module).eval()
    # The score variant of a model whose score does not read the traces (alpha = 0) is exported
    # without the trace decoders: the same score for a third of the work (docs/score-graph.md).
    # Decided here, before tracing, so the choice is a Python branch and not a graph constant.
    wrapper.score_path = None
    if variant == "score" and callable(getattr(module, "forward_fused", None)) and not module.score_needs_traces:
        wrapper.score_path = module.forward_fused
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.rand(2, 3, size, size, generator=generator)
    depth = torch.rand(2, 1, size, size, generator=generator)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The legacy exporter is chosen on purpose (module docstring); its deprecation notice is noise.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper, (rgb, depth), buffer, dynamo=False, opset_version=OPSET,
            input_names=["rgb", "depth"], output_names=list(names),
            dynamic_axes={n: {0: "N"} for n in ("rgb", "depth", *names)},
            do_constant_folding=True,
        )
        reference = module(rgb, depth).score.numpy()  # the full forward, also for a pruned score graph
    model = onnx.load_from_string(buffer.getvalue())
    set_metadata(model, replace(metadata, variant=variant, precision="fp32"))
    onnx.checker.check_model(model)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    diff = parity_max_abs_score(out, rgb.numpy(), depth.numpy(), reference)
    if diff > PARITY_TOLERANCE:
        raise ModelError(f"exported '{out}' disagrees with PyTorch by {diff:.2e} on the score (tolerance "
                         f"{PARITY_TOLERANCE:g}); the model uses an op the exporter mistranslates: report it")
    log.info("exported %s variant=%s opset=%d input=%d parity=%.1e", out, variant, OPSET, size, diff)
    return ExportResult(out, variant, OPSET, size, diff, file_sha256(out), out.stat().st_size)


def parity_max_abs_score(onnx_path: Path, rgb: np.ndarray, depth: np.ndarray, reference: np.ndarray) -> float:
    """Max |score| difference between ONNX Runtime (CPU, fp32) and a reference computed elsewhere."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    score = session.run(["score"], {"rgb": rgb.astype(np.float32), "depth": depth.astype(np.float32)})[0]
    return float(np.max(np.abs(score.reshape(-1) - reference.reshape(-1))))
