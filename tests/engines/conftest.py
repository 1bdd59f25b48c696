"""Fixtures for the engines tests: the tiny module of tiny_pad_model.py, exported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny_pad_model import make_tiny_module, tiny_metadata


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """The tiny module exported (full variant) with a contract and threshold 0.5."""
    import torch

    from engines.export import export_module

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_module(make_tiny_module(), out, tiny_metadata(), variant="full")
    return out


@pytest.fixture(scope="session")
def tiny_score_onnx(tmp_path_factory) -> Path:
    import torch

    from engines.export import export_module

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("onnx") / "tiny_score.onnx"
    export_module(make_tiny_module(), out, tiny_metadata(), variant="score")
    return out
