"""The ``edgefas`` typer application and its single error boundary.

Command modules are listed in ``COMMAND_MODULES``; each exposes ``register(app)``. They must not
import torch (or any other heavy library) at module level: ``edgefas --help`` stays fast and works
on a Jetson without the training extra.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from edge.errors import EdgefasError, MissingExtraError

COMMAND_MODULES: tuple[str, ...] = (
    "edge.cli.faces",
    "edge.cli.synth",
    "edge.cli.capture",
    "edge.cli.train",
    "edge.cli.live",
    "edge.cli.evaluate",
    "edge.cli.kiosk",
    "edge.cli.engines",
    "edge.cli.calibrate",
    "edge.cli.bench",
    "edge.cli.collect",
    "edge.cli.dataset",
    "edge.cli.pin",
)

app = typer.Typer(
    name="edgefas",
    help="RGB-D face presentation-attack detection for Intel RealSense cameras.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

stderr = Console(stderr=True)

# top-level modules of the optional extras in pyproject.toml: a command that imports one that is
# missing ends with the extra to install, not a traceback
OPTIONAL_MODULES = {"torch": "train", "onnx": "train", "tensorboard": "train", "h5py": "train",
                    "matplotlib": "train", "pyrealsense2": "realsense", "paho": "kiosk", "cryptography": "kiosk",
                    "tensorrt": "tensorrt", "pycuda": "tensorrt", "Jetson": "jetson"}


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail to stderr.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=stderr, show_time=False, show_path=False)],
        force=True,
    )


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry: run the app, turn any :class:`EdgefasError` into one line on stderr.

    Click's standalone mode already turns usage errors into a message and exit code 2; everything
    else that is a user's problem arrives here as an :class:`EdgefasError`.
    """
    try:
        app()
    except EdgefasError as err:
        stderr.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except ModuleNotFoundError as err:  # an optional extra a command needs is not installed
        extra = OPTIONAL_MODULES.get((err.name or "").partition(".")[0])
        if extra is None:
            raise
        line = f"this command needs the Python module '{err.name}'; install it with: pip install 'edgefas[{extra}]'"
        stderr.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        sys.exit(MissingExtraError.exit_code)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
