"""One kiosk.toml writer for the kiosk tests: the bundled model pinned by its hash, no API, a random
token secret (production refuses a low-entropy one), the audit log in the test's folder."""

from __future__ import annotations

import secrets
from pathlib import Path

from edge.digest import file_sha256
from engines.bundled import default_model_path


def write_kiosk_toml(folder: Path, source: str, *, production: bool, actuator: str = 'type = "none"',
                     digest: str | None = None, kiosk_extra: str = "", console: str | None = None,
                     api: str = "enabled = false") -> Path:
    """``folder/kiosk.toml`` for ``source``; ``digest`` replaces the model's true sha256 (a wrong pin),
    ``kiosk_extra`` adds lines to ``[kiosk]``, ``actuator`` is the ``[actuator]`` table's body,
    ``console`` the ``[console]`` table's body (no table when None: the console is off), ``api`` the
    ``[api]`` table's body (off unless given)."""
    model = default_model_path()
    key = folder / "token.key"
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    path = folder / "kiosk.toml"
    path.write_text(f"""
[kiosk]
source = "{source}"
model = "{model}"
model_sha256 = "{digest or file_sha256(model)}"
production = {str(production).lower()}
{kiosk_extra}

[api]
{api}

[token]
algorithm = "hmac-sha256"
secret_file = "{key}"

[audit]
path = "{folder / 'audit.sqlite'}"

[actuator]
{actuator}
""" + ("" if console is None else f"\n[console]\n{console}\n"))
    return path
