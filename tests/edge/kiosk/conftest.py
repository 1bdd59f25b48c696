"""Fixtures shared by the kiosk tests: a secret file and a valid kiosk.toml to start from."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from edge.kiosk.config import KioskConfig, parse_kiosk_config

BASE_TOML = """
[kiosk]
source = "realsense"
model = "models/edge.onnx"
model_sha256 = "abababababababababababababababababababababababababababababababab"
production = true
unlock_s = 0.2

[policy]
k = 3
n = 4

[api]
host = "127.0.0.1"
port = 0
allow = ["127.0.0.1"]

[token]
algorithm = "hmac-sha256"
secret_file = "token.key"
ttl_s = 5

[audit]
path = "audit.sqlite"

[actuator]
type = "none"
"""


@pytest.fixture
def secret_bytes() -> bytes:
    return secrets.token_urlsafe(32).encode("ascii")


@pytest.fixture
def config_dir(tmp_path: Path, secret_bytes: bytes) -> Path:
    key = tmp_path / "token.key"
    key.write_bytes(secret_bytes + b"\n")
    os.chmod(key, 0o600)
    return tmp_path


def replace_table(text: str, table: str, body: str | None) -> str:
    """Swap one table's body in a TOML text (tables are separated by blank lines in BASE_TOML);
    a table not there yet is appended, ``None`` removes it."""
    blocks = text.strip().split("\n\n")
    out = [b for b in blocks if not b.startswith(f"[{table}]")]
    if body is not None:
        out.append(f"[{table}]\n{body.strip()}")
    return "\n\n".join(out) + "\n"


@pytest.fixture
def make_config(config_dir: Path):
    """Build a KioskConfig from BASE_TOML with some tables replaced: make_config(api='port = 1');
    a table given as None is removed."""

    def build(**tables: str | None) -> KioskConfig:
        text = BASE_TOML
        for name, body in tables.items():
            text = replace_table(text, name, body)
        return parse_kiosk_config(text, config_dir / "kiosk.toml")

    return build
