"""The one check of the site tests' refusals: a non-zero exit with one :class:`EdgefasError` line."""

from __future__ import annotations

from edge.errors import EdgefasError


def one_line_error(result) -> str:
    """The message of a CliRunner ``result`` that must be a refusal (what ``edgefas`` prints after ``error:``)."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, EdgefasError), f"{type(result.exception).__name__}: {result.exception}"
    message = str(result.exception)
    assert "\n" not in message, message
    return message
