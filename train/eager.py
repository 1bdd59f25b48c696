"""PyTorch eager inference of the model an ONNX file was exported from, for the "ORT vs eager" ratio.

It lives under ``train/`` because the runtime (``edge/``) never imports torch or ``train``: the
``edgefas bench`` command imports this module only when the eager row is asked for and hands
:func:`open_eager_runner` to ``edge.bench``; torch itself is imported inside that function (without
torch the bench skips the row and says why). The network is rebuilt from the preset named in the ONNX metadata;
without a checkpoint its weights are a fresh initialisation, which costs the same time (dense fp32
kernels do not look at values), and the report says which weights were used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edge.errors import ModelError, import_optional
from engines.outputs import Outputs
from engines.runner import check_inputs

BACKEND = "torch-eager"


class EagerRunner:
    """A :class:`engines.runner.Runner` over a ``torch.nn.Module`` in eval mode, under ``inference_mode``."""

    backend = BACKEND

    def __init__(self, module, torch, path: Path, contract: Mapping[str, str], threshold: float | None,
                 input_size: int, threads: int, weights: str, fused_only: bool = False) -> None:
        self._module, self._torch = module, torch
        self._forward = module.forward_fused if fused_only else module
        self.path, self.contract, self.threshold, self.input_size = path, contract, threshold, input_size
        self.threads, self.weights = threads, weights
        self.provider = f"torch {torch.__version__} cpu"

    def run(self, rgb: np.ndarray, depth: np.ndarray) -> Outputs:
        check_inputs(rgb, depth, self.input_size)
        torch = self._torch
        with torch.inference_mode():
            out = self._forward(torch.from_numpy(rgb), torch.from_numpy(depth))
        return Outputs(score=out.score.numpy().astype(np.float32).reshape(-1),
                       spoof_map=out.spoof_map.numpy().astype(np.float32), backend=BACKEND, provider=self.provider)

    def close(self) -> None:
        self._module = self._forward = None


def open_eager_runner(onnx_path: Path, threads: int, checkpoint: Path | None = None) -> EagerRunner:
    """The PyTorch module behind ``onnx_path`` (its preset, or ``checkpoint``'s weights) on ``threads``.

    ``torch.set_num_threads`` is process-wide; the bench sets it to the ONNX Runtime runners' count
    so that both run on the same cores.
    """
    torch = import_optional("torch", "train", "the PyTorch eager row of the benchmark")
    from engines.metadata import read_metadata
    from train.model.network import build_model
    from train.model.presets import file_config

    metadata = read_metadata(onnx_path)
    torch.set_num_threads(threads)
    config = file_config(metadata) if metadata.preset else None
    if checkpoint is not None:
        from train.checkpoint import load_checkpoint

        module, _ = load_checkpoint(checkpoint, expect=config)
        weights = f"checkpoint {Path(checkpoint).name}"
    else:
        if config is None:
            raise ModelError(f"'{onnx_path}' names no preset in its metadata; give the eager row a checkpoint "
                             f"with --torch-checkpoint")
        torch.manual_seed(0)
        module = build_model(config)
        weights = f"fresh {metadata.preset} initialisation (timing does not depend on weight values)"
    module.eval()
    if metadata.alpha is not None and metadata.alpha > 0.0:
        module.set_alpha(metadata.alpha)  # the same graph as the file: traces in the score
    # The same work as the ONNX file: its score variant skips the trace decoders when alpha is 0.
    fused_only = metadata.variant == "score" and not module.score_needs_traces
    return EagerRunner(module, torch, Path(onnx_path), metadata.preprocess, metadata.threshold,
                       metadata.input_size, threads, weights, fused_only)
