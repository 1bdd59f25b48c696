"""A typed reader over one TOML table, so every config error names its file, table and key.

``TomlTable`` hands out values by type and remembers which keys were read; :meth:`TomlTable.finish`
refuses whatever was left over (a typo such as ``prot = 8080`` must not silently fall back to a
default). Messages follow one form: ``kiosk.toml: [api] port must be an integer, got "abc"``.
Secrets are read here too, from a file or an environment variable, and wrapped so that they never
reach a log line or a repr.
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
from pathlib import Path
from typing import Any

from edge.errors import ConfigError

log = logging.getLogger(__name__)


class Secret:
    """Bytes that must not be logged: ``repr``/``str`` show only where they came from."""

    __slots__ = ("_value", "origin")

    def __init__(self, value: bytes, origin: str) -> None:
        self._value = value
        self.origin = origin

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<hidden>, from {self.origin})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self.origin)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


class TomlTable:
    """One table of a parsed TOML document (``[name]``), read key by key."""

    def __init__(self, file_name: str, name: str, data: Any, base_dir: Path | None = None) -> None:
        self.file_name = file_name
        self.name = name
        self.base_dir = base_dir or Path(".")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{file_name}: [{name}] must be a table, got {_show(data)}")
        self.data = data
        self._read: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.file_name}: [{self.name}] {key}"

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where(key)} {problem}")

    def _get(self, key: str, default: Any, required: bool) -> Any:
        self._read.add(key)
        if key not in self.data:
            if required:
                raise ConfigError(f"{self.file_name}: [{self.name}] needs {key}")
            return default
        return self.data[key]

    def string(self, key: str, default: str | None = None, *, required: bool = False,
               choices: tuple[str, ...] | None = None) -> str | None:
        value = self._get(key, default, required)
        if key not in self.data:
            return value
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {_show(value)}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}; got {_show(value)}")
        return value

    def integer(self, key: str, default: int | None = None, *, required: bool = False,
                minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self._get(key, default, required)
        if key not in self.data:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {_show(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(key, f"must be at most {maximum}, got {value}")
        return value

    def number(self, key: str, default: float | None = None, *, required: bool = False,
               positive: bool = True) -> float | None:
        value = self._get(key, default, required)
        if key not in self.data:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"must be a number, got {_show(value)}")
        if positive and value <= 0:
            raise self.fail(key, f"must be greater than 0, got {value}")
        return float(value)

    def boolean(self, key: str, default: bool | None = None, *, required: bool = False) -> bool | None:
        value = self._get(key, default, required)
        if key not in self.data:
            return value
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {_show(value)}")
        return value

    def strings(self, key: str, default: tuple[str, ...] = (), *, required: bool = False,
                non_empty: bool = False) -> tuple[str, ...]:
        value = self._get(key, default, required)
        if key not in self.data:
            return tuple(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"must be a list of strings, got {_show(value)}")
        if non_empty and not value:
            raise self.fail(key, "must not be empty")
        return tuple(value)

    def path(self, key: str, default: str | None = None, *, required: bool = False) -> Path | None:
        """A path; relative paths are taken relative to the config file's folder."""
        value = self.string(key, default, required=required)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def secret(self, prefix: str = "secret", *, required: bool = True) -> Secret | None:
        """Read ``<prefix>_file`` or ``<prefix>_env`` (exactly one). File contents are stripped of
        surrounding whitespace; a file readable by group or others is refused, like ssh does."""
        file_key, env_key = f"{prefix}_file", f"{prefix}_env"
        path = self.path(file_key)
        env_name = self.string(env_key)
        if path is not None and env_name is not None:
            raise ConfigError(f"{self.file_name}: [{self.name}] set only one of {file_key} and {env_key}")
        if path is None and env_name is None:
            if required:
                raise ConfigError(f"{self.file_name}: [{self.name}] needs {file_key} (a file holding the "
                                  f"secret) or {env_key} (the name of an environment variable holding it)")
            return None
        if env_name is not None:
            value = os.environ.get(env_name)
            if not value:
                raise self.fail(env_key, f"names the environment variable {env_name}, which is not set or empty; "
                                         "set it in the service's environment file")
            return Secret(value.encode("utf-8"), f"${env_name}")
        try:
            mode = path.stat().st_mode
            raw = path.read_bytes()
        except OSError as exc:
            raise self.fail(file_key, f"cannot be read ({exc.strerror}: {path}); create it with mode 600 "
                                      "owned by the service user") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise self.fail(file_key, f"{path} is readable by group or others; run: chmod 600 {path}")
        value = raw.strip()
        if not value:
            raise self.fail(file_key, f"{path} is empty")
        return Secret(value, str(path))

    def finish(self) -> None:
        """Refuse keys nobody asked for."""
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            valid = ", ".join(sorted(self._read)) or "none"
            raise ConfigError(f"{self.file_name}: [{self.name}] unknown key {json.dumps(unknown[0])}; "
                              f"valid keys: {valid}")
