"""A source that never delivers ends `edgefas live` with one line and a non-zero exit.

It used to report a camera fault every 2 s (for ever without --frames, exit 0 with --frames), so a
mistyped scenario or a missing recording looked like a run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from edge.cli.app import app
from edge.errors import EdgefasError


@pytest.mark.parametrize("spec,says", [
    ("synthetic:nosuchscenario", "unknown synthetic scenario 'nosuchscenario'"),
    ("photo:nosuchscenario", "nosuchscenario"),
    ("bag:{tmp}/missing.bag", "does not exist"),
    ("nosuchkind:x", "unknown source spec"),
])
def test_live_with_a_source_that_never_opens_is_one_line_and_fails(tmp_path, spec, says):
    result = CliRunner().invoke(app, ["live", "--headless", "--frames", "2", "--camera", spec.format(tmp=tmp_path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, EdgefasError), f"{type(result.exception).__name__}: {result.exception}"
    message = str(result.exception)
    assert "\n" not in message and says in message, message
    assert '"frame"' not in result.stdout  # no fault frames printed as if the run had happened
