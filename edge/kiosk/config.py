"""``kiosk.toml``: read once at start, validated completely into frozen dataclasses.

Every problem is a one-line :class:`ConfigError` naming the file, table and key
(``kiosk.toml: [api] port must be an integer, got "abc"``); unknown tables and keys are refused, so a
typo cannot silently fall back to a default. Secrets come from a file (mode 600) or an environment
variable and are held in :class:`~edge.kiosk.toml_table.Secret`, which never prints its value.
The decision threshold is deliberately absent: it comes from the model artifact (DESIGN §2).
See deploy/kiosk.example.toml for every key with its meaning.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ConfigError
from edge.kiosk.actuators.actuator import ActuatorSettings, read_actuator_settings
from edge.kiosk.tokens import Ed25519Key, HmacKey, TokenKey
from edge.kiosk.toml_table import Secret, TomlTable
from edge.policy import PolicyConfig

TABLES = ("kiosk", "policy", "api", "token", "audit", "actuator")
DEFAULT_API_PORT = 8765  # any free local port works; the API listens on loopback only by default
TOKEN_ALGORITHMS = {"hmac-sha256": "HS256", "ed25519": "EdDSA"}


@dataclass(frozen=True)
class ServiceSettings:
    """``[kiosk]``: what to run and how long a grant opens the door."""

    source: str  # frame source spec (edge.capture.source); production refuses software sources
    model: Path  # the model artifact (its manifest carries threshold and preprocessing)
    production: bool = True
    # sha256 of the model file; the service refuses to start on any other file. The kiosk refuses to
    # start in production without it: a door must not silently decide with a replaced model.
    model_sha256: str | None = None
    unlock_s: float = 3.0  # relay pulse / unlock duration; typical electric-strike setting, adjust per door
    decision_max_age_ms: float = 1000.0  # the API answers "unknown" when the newest decision is older
    capture_process: bool = False  # read, filter and align in a child process (LiveOptions.capture_process)
    depth_filters: str = "default"  # librealsense depth chain (LiveOptions.depth_filters)


@dataclass(frozen=True)
class ApiConfig:
    """``[api]``: the local HTTP API for kiosk applications."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = DEFAULT_API_PORT
    allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")  # caller addresses or networks admitted

    def admits(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.allow)


@dataclass(frozen=True)
class TokenConfig:
    """``[token]``: how decision tokens are signed."""

    algorithm: str  # "hmac-sha256" (shared secret) or "ed25519" (PEM private key)
    secret: Secret
    ttl_s: float = 10.0  # a kiosk app asks and acts at once on the same device; seconds are plenty

    def key(self) -> TokenKey:
        if self.algorithm == "ed25519":
            return Ed25519Key.from_pem(self.secret.reveal())
        return HmacKey(self.secret.reveal())


@dataclass(frozen=True)
class AuditConfig:
    """``[audit]``: where the SQLite audit log lives and what it keeps."""

    path: Path
    store_face_images: bool = False  # opt-in only: JPEG face crops are personal data
    retention_days: float | None = 90.0  # None keeps everything


@dataclass(frozen=True)
class KioskConfig:
    path: Path
    kiosk: ServiceSettings
    policy: PolicyConfig
    api: ApiConfig
    token: TokenConfig
    audit: AuditConfig
    actuator: ActuatorSettings


def _read_kiosk(t: TomlTable) -> ServiceSettings:
    source, model = t.string("source", required=True), t.path("model", required=True)
    production = t.boolean("production", True)
    digest = t.string("model_sha256", None)
    if digest is not None and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower())):
        raise t.fail("model_sha256", f"must be 64 hexadecimal digits (sha256sum of the model), got {digest!r}")
    return ServiceSettings(source=source, model=model, production=production, unlock_s=t.number("unlock_s", 3.0),
                           decision_max_age_ms=t.number("decision_max_age_ms", 1000.0),
                           model_sha256=None if digest is None else digest.lower(),
                           capture_process=t.boolean("capture_process", False),
                           depth_filters=_depth_filters(t))


def _depth_filters(t: TomlTable) -> str:
    from edge.capture.rs_pipeline import filter_chain

    name = t.string("depth_filters", "default")
    filter_chain(name, t.where("depth_filters"))  # an unknown chain names the key and the choices
    return name


def _read_policy(t: TomlTable) -> PolicyConfig:
    values = {}
    for f in dataclasses.fields(PolicyConfig):
        if isinstance(f.default, int):
            values[f.name] = t.integer(f.name, f.default, minimum=1)
        else:
            values[f.name] = t.number(f.name, f.default)
    if values["k"] > values["n"]:
        raise t.fail("k", f"({values['k']}) must not exceed n ({values['n']})")
    if values["spoof_frames_to_reject"] > values["n"]:
        raise t.fail("spoof_frames_to_reject", f"({values['spoof_frames_to_reject']}) must not exceed n "
                                               f"({values['n']})")
    return PolicyConfig(**values)


def _read_api(t: TomlTable) -> ApiConfig:
    host = t.string("host", "127.0.0.1")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise t.fail("host", f"must be an IP address to bind (127.0.0.1 keeps the API local), got \"{host}\"") from None
    allow = t.strings("allow", ("127.0.0.1", "::1"), non_empty=True)
    for entry in allow:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise t.fail("allow", f"entry \"{entry}\" is not an IP address or network") from None
    return ApiConfig(enabled=t.boolean("enabled", True), host=host,
                     port=t.integer("port", DEFAULT_API_PORT, minimum=0, maximum=65535), allow=allow)


def _read_token(t: TomlTable) -> TokenConfig:
    config = TokenConfig(algorithm=t.string("algorithm", "hmac-sha256", choices=tuple(TOKEN_ALGORITHMS)),
                         secret=t.secret("secret"), ttl_s=t.number("ttl_s", 10.0))
    try:
        config.key()  # a short HMAC secret or a non-Ed25519 PEM is refused now, not at the first request
    except ConfigError as exc:
        raise ConfigError(f"{t.where('secret')}: {exc}") from None
    return config


def _read_audit(t: TomlTable) -> AuditConfig:
    retention = t.number("retention_days", 90.0, positive=False)
    if retention < 0:
        raise t.fail("retention_days", f"must be 0 (keep everything) or more, got {retention:g}")
    return AuditConfig(path=t.path("path", required=True), store_face_images=t.boolean("store_face_images", False),
                       retention_days=retention or None)


def parse_kiosk_config(text: str, path: Path) -> KioskConfig:
    """Validate TOML text; ``path`` names the file in messages and anchors relative paths."""
    name = path.name
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML ({exc})") from None
    unknown = sorted(set(document) - set(TABLES))
    if unknown:
        raise ConfigError(f"{name}: unknown table [{unknown[0]}]; valid tables: {', '.join(TABLES)}")
    tables = {n: TomlTable(name, n, document.get(n), path.parent) for n in TABLES}
    for required in ("kiosk", "token", "audit"):
        if required not in document:
            raise ConfigError(f"{name}: missing table [{required}]; see deploy/kiosk.example.toml")
    kiosk = _read_kiosk(tables["kiosk"])
    policy = _read_policy(tables["policy"])
    api = _read_api(tables["api"])
    token = _read_token(tables["token"])
    audit = _read_audit(tables["audit"])
    actuator = read_actuator_settings(tables["actuator"])
    for table in tables.values():
        table.finish()
    return KioskConfig(path=path, kiosk=kiosk, policy=policy, api=api, token=token, audit=audit, actuator=actuator)


def load_kiosk_config(path: Path | str) -> KioskConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; start from deploy/kiosk.example.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    return parse_kiosk_config(text, path)
