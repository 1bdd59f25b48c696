"""The default model that ships inside the package (see engines/models/MODEL_CARD.md).

It is the ``edge`` preset trained on the synthetic world only: it makes every command work out of
the box and proves the pipeline end to end, and it is not fit to guard a real door.
"""

from __future__ import annotations

from pathlib import Path

from edge.errors import ModelError

MODELS_DIR = Path(__file__).resolve().parent / "models"
# Two INT8 flavours of the same calibration (docs/int8.md): ``int8`` the symmetric Q/DQ file TensorRT
# compiles (`edgefas build-engine --onnx edge-synthetic.int8.onnx --precision int8`), ``int8-cpu`` the
# U8S8 file ONNX Runtime runs fast on a CPU. A flavour ships only if it passed the accuracy gate; a refused
# one leaves its gate JSON as evidence and no model file (engines/models/edge-synthetic.checks.json,
# "int8_refused"; engines/models/MODEL_CARD.md).
VARIANTS = {"score": "edge-synthetic.onnx", "int8": "edge-synthetic.int8.onnx",
            "int8-cpu": "edge-synthetic.int8-cpu.onnx", "full": "edge-synthetic.full.onnx"}


def default_model_path(variant: str = "score") -> Path:
    """The bundled model file: ``score`` (fp32, the default), ``int8`` (Q/DQ, symmetric: for TensorRT),
    ``int8-cpu`` (Q/DQ, U8S8: what ONNX Runtime runs fast on a CPU) or ``full`` (with traces)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    path = MODELS_DIR / VARIANTS[variant]
    if not path.is_file():
        raise ModelError(f"the bundled default model '{path.name}' is missing from {MODELS_DIR}; reinstall edgefas "
                         f"or pass --model PATH")
    return path


def cpu_model_path() -> Path:
    """The bundled file ONNX Runtime runs fastest on a CPU: ``int8-cpu`` when it shipped, else fp32 ``score``."""
    path = MODELS_DIR / VARIANTS["int8-cpu"]
    return path if path.is_file() else default_model_path("score")
