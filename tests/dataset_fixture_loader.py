"""Shared by the dataset tests (readers in tests/edge/datasets, threshold calibration in tests/calibration): the
fixture writer in tools/ (and any other tool, ``load_tool``), and record comparison helpers. It lies in tests/ so
that every test folder can import it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_tool(name: str):
    """``tools/NAME.py`` as a module (tools/ is not a package), loaded once."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_fixture_writer():
    """``tools/make_dataset_fixtures.py`` as a module."""
    return load_tool("make_dataset_fixtures")


def truth(samples) -> list[tuple[str, str, str, str]]:
    return [(s.label, s.pai, s.pai_code, s.subject) for s in samples]


def expected(manifest, split: str) -> list[tuple[str, str, str, str]]:
    return [(f.label, f.pai, f.pai_code, f.subject) for f in manifest if f.split == split]
