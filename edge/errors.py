"""One error family for problems a user can fix.

Every message says what went wrong *and* what to do next; the CLI prints it as one line and exits
non-zero. Programmer mistakes (a tensor of the wrong shape passed by our own code) raise the usual
``TypeError``/``ValueError`` instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType


class EdgefasError(Exception):
    """A problem the user can fix; ``str(err)`` is the one line the CLI prints."""

    exit_code: int = 1


class SourceError(EdgefasError):
    """A frame source could not be opened or read (camera, recording, folder, spec string)."""


class SourceUnavailableError(EdgefasError):
    """A source never delivered: it could not be opened in the first attempts (no camera, a missing or
    unreadable recording, an unknown scenario). Not a :class:`SourceError`: nothing was lost, so there
    is nothing to reconnect to; the command stops with this line instead of reporting faults forever.
    A source that opened once and then fails is a fault, and the watchdog reconnects."""


class DatasetError(EdgefasError):
    """A dataset on disk does not have the expected layout or content."""


class DatasetSpecError(DatasetError):
    """A dataset spec or split as written cannot be right (unknown kind, a frame source spec, a missing
    part, a split that does not exist); the message lists the valid forms. Exit code 2, as for any other
    malformed command line (click's usage errors), because nothing was read yet."""

    exit_code = 2


class ModelError(EdgefasError):
    """A model file, checkpoint or artifact is missing, corrupt or incompatible."""


class EngineError(EdgefasError):
    """An inference engine could not be built, loaded or run."""


class ConfigError(EdgefasError):
    """A configuration file or option is invalid."""


class ChoiceError(ConfigError):
    """An option that takes one of a fixed set of values got another; the message names the option
    and lists the valid values (see :func:`check_choice`)."""


class ProductionError(ConfigError):
    """Production mode refuses a source or a camera (a recording, a rendered stream, a software
    device, a USB 2 link, old firmware). Not a :class:`SourceError`: reconnecting cannot change the
    answer, so a watchdog passes it on instead of retrying, and the service stops with this line."""


class MissingExtraError(EdgefasError):
    """An optional dependency is not installed; the message names the extra that provides it."""

    exit_code = 2


def check_choice(value: str, choices: Iterable[str], option: str) -> str:
    """``value`` if it is one of ``choices``; else a one-line :class:`ChoiceError` naming ``option``
    (as the user wrote it: ``--detector``, ``[kiosk] depth_filters``) and every valid value."""
    valid = tuple(choices)
    if value not in valid:
        raise ChoiceError(f"{option} must be one of {', '.join(valid)}, got '{value}'")
    return value


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install 'edgefas[extra]'``.

    Heavy or hardware-bound libraries (torch, pyrealsense2, tensorrt, pycuda) are imported through
    this so that ``edgefas --help`` and the Jetson runtime never pay for what they do not use.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the Python module '{module}' ({exc}); "
            f"install it with: pip install 'edgefas[{extra}]'"
        ) from None
