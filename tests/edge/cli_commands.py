"""Every leaf command of the edgefas app, for the tests that must cover each command and option
(a new command or option then fails them until it has its rows)."""

from __future__ import annotations

import typer.main

from edge.cli.app import app


def leaf_commands(group=None, prefix: str = ""):
    """(path, command) of every leaf command under a click group (typer vendors its own click);
    the whole app by default."""
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        if hasattr(command, "commands"):
            yield from leaf_commands(command, path)
        else:
            yield path, command
