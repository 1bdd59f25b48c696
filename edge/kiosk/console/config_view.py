"""The configuration page's content: kiosk.toml as the service read it, with nothing secret in it.

Rendered from the validated :class:`~edge.kiosk.config.KioskConfig`, not from the file's text, so
what is shown is what runs (defaults included) and a secret cannot leak through a comment or a key
the page does not know: a :class:`~edge.kiosk.toml_table.Secret` shows only where it comes from,
and any field whose name says it holds a secret, a password or a hash shows only whether it is set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from edge.kiosk.config import KioskConfig
from edge.kiosk.toml_table import Secret

SECRET_NAME = re.compile(r"secret|password|passphrase|hash|token|key$", re.IGNORECASE)
TABLE_FIELDS = ("kiosk", "policy", "api", "token", "audit", "actuator", "console")  # KioskConfig's field per table


def shown(name: str, value: Any) -> str:
    """One value as the page shows it."""
    if isinstance(value, Secret):
        return f"hidden (from {value.origin})"
    if SECRET_NAME.search(name) and isinstance(value, (str, bytes)) and not name.endswith("_sha256"):
        return "set (hidden)" if value else "not set"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (tuple, list)):
        return ", ".join(shown(name, v) for v in value) or "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "(none)"
    return str(value)


def _rows(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            rows += _rows(value, f"{name}.")
        else:
            rows.append((name, shown(f.name, value)))
    return rows


@dataclasses.dataclass(frozen=True)
class ConfigView:
    path: Path
    sha256: str  # of the file as it is now: differs from what runs if someone edited it since the start
    modified_utc: str
    tables: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (table, ((key, shown value), ...))


def config_view(config: KioskConfig) -> ConfigView:
    tables = tuple((name, tuple(_rows(getattr(config, name)))) for name in TABLE_FIELDS)
    try:
        data = config.path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        modified = datetime.fromtimestamp(config.path.stat().st_mtime, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except OSError as exc:
        digest, modified = f"cannot be read now ({exc.strerror})", "-"
    return ConfigView(config.path.resolve(), digest, modified, tables)
