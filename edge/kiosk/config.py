"""``kiosk.toml``: read once at start, validated completely into frozen dataclasses.

Every problem is a one-line :class:`ConfigError` naming the file, table and key
(``kiosk.toml: [api] port must be an integer, got "abc"``); unknown tables and keys are refused, so a
typo cannot silently fall back to a default. Secrets come from a file (mode 600) or an environment
variable and are held in :class:`~edge.kiosk.toml_table.Secret`, which never prints its value.
The decision threshold is deliberately absent: it comes from the model artifact (DESIGN §2).
See deploy/kiosk.example.toml for every key with its meaning.

Values are range-checked where a value out of range would make the door open when it should not, or
never open for its owner (each bound says where it comes from, at its constant). What is legal but
risky (an API open to every address, a weak token secret outside production) is logged at WARNING
and kept in :attr:`KioskConfig.warnings`, which the service writes into its start audit row.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import ConfigError
from edge.kiosk.actuators.actuator import ActuatorSettings, read_actuator_settings
from edge.kiosk.actuators.gpio_relay import MAX_PULSE_S
from edge.kiosk.rate_limit import DEFAULT_BURST, DEFAULT_RATE_PER_S
from edge.kiosk.tokens import MIN_SECRET_ENTROPY_BITS, Ed25519Key, HmacKey, TokenKey, estimated_entropy_bits
from edge.kiosk.toml_table import Secret, TomlTable
from edge.policy import PolicyConfig

log = logging.getLogger(__name__)

TABLES = ("kiosk", "policy", "api", "token", "audit", "actuator", "console")
DEFAULT_API_PORT = 8765  # any free local port works; the API listens on loopback only by default
DEFAULT_CONSOLE_PORT = 8766  # the API's port + 1; the console listens on loopback only by default
# The live view's frame cap: a few frames a second show an installer where the face box and the
# spoof map fall; each frame shown costs two JPEG encodes (colour and depth) on the door's CPU, so
# the cap stays well below the camera's 30 fps (what a viewer costs: tools/console_bench.py).
DEFAULT_CONSOLE_FPS, MAX_CONSOLE_FPS = 5.0, 15.0
CONSOLE_SESSION_RANGE_S = (60.0, 86400.0)  # a minute to a day; default 15 minutes idle (OWASP Session Management)
TOKEN_ALGORITHMS = {"hmac-sha256": "HS256", "ed25519": "EdDSA"}
# A token proves liveness *now* to an application on the same device, which asks and acts at once.
# Lower bound: below a second a token can expire between the answer and the verification on a busy
# board. Upper bound: 300 s, the freshness window that MIT Kerberos (default clockskew) and Stripe's
# webhook signatures (default tolerance) allow; a longer-lived token is a replayable door key.
TOKEN_TTL_RANGE_S = (1.0, 300.0)
MAX_UNLOCK_S = MAX_PULSE_S  # the GPIO relay refuses longer pulses; one bound for every actuator
MAX_RATE_BURST = 10_000  # a burst beyond this is no limit at all


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
    capture_process: bool = False  # read in a child process; face first: it also finds, aligns and crops (LiveOptions.capture_process)
    depth_filters: str = "default"  # librealsense depth chain (LiveOptions.depth_filters)
    face_first: bool = True  # roi = "on": the face-first path (docs/face-first.md); "off": the whole frame


@dataclass(frozen=True)
class ApiConfig:
    """``[api]``: the local HTTP API for kiosk applications."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = DEFAULT_API_PORT
    allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")  # caller addresses or networks admitted
    rate_per_s: float = DEFAULT_RATE_PER_S  # sustained requests a second per caller (edge/kiosk/rate_limit.py)
    burst: int = DEFAULT_BURST  # requests a caller may make at once before the rate applies

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
class ConsoleConfig:
    """``[console]``: the installer console (docs/kiosk-console.md). Off unless ``enabled = true``."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_CONSOLE_PORT
    password_hash: str = field(default="", repr=False)  # scrypt (edge.kiosk.console.password); never rendered
    max_fps: float = DEFAULT_CONSOLE_FPS  # live-view frames encoded per second at most, whatever the viewers ask
    session_idle_s: float = 900.0  # a login ends after this long without a request


@dataclass(frozen=True)
class KioskConfig:
    path: Path
    kiosk: ServiceSettings
    policy: PolicyConfig
    api: ApiConfig
    token: TokenConfig
    audit: AuditConfig
    actuator: ActuatorSettings
    warnings: tuple[str, ...] = ()  # legal but risky settings, logged at WARNING and audited at start
    console: ConsoleConfig = ConsoleConfig()


def _read_kiosk(t: TomlTable) -> ServiceSettings:
    source, model = t.string("source", required=True), t.path("model", required=True)
    production = t.boolean("production", True)
    digest = t.string("model_sha256", None)
    if digest is not None and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower())):
        raise t.fail("model_sha256", f"must be 64 hexadecimal digits (sha256sum of the model), got {digest!r}")
    unlock_s = t.number("unlock_s", 3.0)
    if unlock_s > MAX_UNLOCK_S:
        raise t.fail("unlock_s", f"must be at most {MAX_UNLOCK_S:g} s (a longer opening is a misconfiguration, "
                                 f"and the GPIO relay refuses it at the first grant), got {unlock_s:g}")
    return ServiceSettings(source=source, model=model, production=production, unlock_s=unlock_s,
                           decision_max_age_ms=t.number("decision_max_age_ms", 1000.0),
                           model_sha256=None if digest is None else digest.lower(),
                           capture_process=t.boolean("capture_process", False),
                           depth_filters=_depth_filters(t),
                           face_first=t.string("roi", "on", choices=("on", "off")) == "on")


def _depth_filters(t: TomlTable) -> str:
    from edge.capture.rs_pipeline import depth_chain

    # the kiosk's one check of the chain: an unknown name names the key and the choices; the checked
    # DepthChain passes through the session and the source unchecked
    return depth_chain(t.string("depth_filters", "default"), t.where("depth_filters"))


def _read_policy(t: TomlTable) -> PolicyConfig:
    values = {}
    for f in dataclasses.fields(PolicyConfig):
        if isinstance(f.default, int):
            values[f.name] = t.integer(f.name, f.default, minimum=1)
        else:
            values[f.name] = t.number(f.name, f.default)
    k, n, window_s = values["k"], values["n"], values["window_s"]
    if k > n:
        raise t.fail("k", f"({k}) must not exceed n ({n})")
    if values["spoof_frames_to_reject"] > n:
        raise t.fail("spoof_frames_to_reject", f"({values['spoof_frames_to_reject']}) must not exceed n ({n})")
    if 2 * k <= n:
        # with k <= n/2 a face whose frames look live less often than not can open the door
        # (docs/decision-policy.md: at k = 8 of 10, a 50 %-live attack passes 9 % of attempts)
        raise t.fail("k", f"({k}) must be more than half of n ({n}): fewer live frames than attack frames "
                          "must never open the door")
    from edge.capture.realsense import CAMERA_FPS

    fps = max(CAMERA_FPS)  # the fastest the camera delivers (D4xx datasheet): more frames cannot exist
    frames_in_window = math.floor(window_s * fps + 1e-9) + 1  # frames at most window_s apart (policy _trim)
    for key in ("k", "spoof_frames_to_reject"):
        if values[key] > frames_in_window:
            raise t.fail(key, f"({values[key]}) can never be met: window_s = {window_s:g} s holds at most "
                              f"{frames_in_window} frames at {fps} fps; raise window_s or lower {key}")
    period_ms = 1000.0 / fps
    for key in ("max_latency_ms", "max_frame_age_ms"):
        if values[key] < period_ms:
            raise t.fail(key, f"({values[key]:g}) is shorter than one frame period at {fps} fps "
                              f"({period_ms:.1f} ms): every frame would be over budget and the door would never open")
        if values[key] > window_s * 1000.0:
            raise t.fail(key, f"({values[key]:g}) exceeds window_s ({window_s * 1000.0:g} ms): a frame that old "
                              "cannot be part of the K-of-N window; the score would describe the past")
    return PolicyConfig(**values)


def _read_api(t: TomlTable, warnings: list[str]) -> ApiConfig:
    host = t.string("host", "127.0.0.1")
    try:
        bind = ipaddress.ip_address(host)
    except ValueError:
        raise t.fail("host", f"must be an IP address to bind (127.0.0.1 keeps the API local), got \"{host}\"") from None
    allow = t.strings("allow", ("127.0.0.1", "::1"), non_empty=True)
    networks = []
    for entry in allow:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise t.fail("allow", f"entry \"{entry}\" is not an IP address or network") from None
    enabled = t.boolean("enabled", True)
    anyone = [str(net) for net in networks if net.prefixlen == 0]
    if enabled and not bind.is_loopback and anyone:
        warnings.append(f"{t.where('allow')} admits every address ({', '.join(anyone)}) on {host}: anyone who can "
                        "reach this port may ask for decisions; list the kiosk application's address instead")
    burst = t.integer("burst", DEFAULT_BURST, minimum=1, maximum=MAX_RATE_BURST)
    return ApiConfig(enabled=enabled, host=host, port=t.integer("port", DEFAULT_API_PORT, minimum=0, maximum=65535),
                     allow=allow, rate_per_s=t.number("rate_per_s", DEFAULT_RATE_PER_S), burst=burst)


def _read_console(t: TomlTable, warnings: list[str]) -> ConsoleConfig:
    from edge.kiosk.console.password import PasswordHashError, parse_password_hash

    enabled = t.boolean("enabled", False)
    host = t.string("host", "127.0.0.1")
    port = t.integer("port", DEFAULT_CONSOLE_PORT, minimum=0, maximum=65535)
    password_hash = t.string("password_hash", "")
    max_fps = t.number("max_fps", DEFAULT_CONSOLE_FPS)
    idle_s = t.number("session_idle_s", 900.0)
    t.finish()  # a misspelt key is named before "password_hash is required" sends the reader elsewhere
    try:
        bind = ipaddress.ip_address(host)
    except ValueError:
        raise t.fail("host", f"must be an IP address to bind (127.0.0.1 keeps the console local), "
                             f"got \"{host}\"") from None
    if password_hash:
        try:
            parse_password_hash(password_hash)
        except PasswordHashError as exc:
            raise t.fail("password_hash", str(exc)) from None
    elif enabled:
        raise t.fail("password_hash", "is required when the console is enabled; make one with "
                                      "`edgefas kiosk-password` and paste the line it prints")
    if max_fps > MAX_CONSOLE_FPS:
        raise t.fail("max_fps", f"must be at most {MAX_CONSOLE_FPS:g} (the live view must not slow the door), "
                                f"got {max_fps:g}")
    low, high = CONSOLE_SESSION_RANGE_S
    if not low <= idle_s <= high:
        raise t.fail("session_idle_s", f"must be between {low:g} and {high:g} s, got {idle_s:g}")
    if enabled and not bind.is_loopback:
        warnings.append(f"{t.where('host')} is {host}: the console is plain HTTP, so its password and pages cross "
                        "the network readable; prefer 127.0.0.1 and an SSH tunnel")
    return ConsoleConfig(enabled=enabled, host=host, port=port, password_hash=password_hash, max_fps=max_fps,
                         session_idle_s=idle_s)


def _read_token(t: TomlTable, production: bool, warnings: list[str]) -> TokenConfig:
    low, high = TOKEN_TTL_RANGE_S
    ttl_s = t.number("ttl_s", 10.0)
    if not low <= ttl_s <= high:
        raise t.fail("ttl_s", f"must be between {low:g} and {high:g} s (a token proves liveness now; see "
                              f"docs/kiosk-integration.md), got {ttl_s:g}")
    config = TokenConfig(algorithm=t.string("algorithm", "hmac-sha256", choices=tuple(TOKEN_ALGORITHMS)),
                         secret=t.secret("secret"), ttl_s=ttl_s)
    try:
        config.key()  # a short HMAC secret or a non-Ed25519 PEM is refused now, not at the first request
    except ConfigError as exc:
        raise ConfigError(f"{t.where('secret')}: {exc}") from None
    if config.algorithm == "hmac-sha256":
        bits = estimated_entropy_bits(config.secret.reveal())
        if bits < MIN_SECRET_ENTROPY_BITS:
            problem = (f"{t.where('secret')}: the token secret ({config.secret.origin}) looks far from random "
                       f"(about {bits:.0f} bits of entropy, want at least {MIN_SECRET_ENTROPY_BITS}); make one with: "
                       "head -c 32 /dev/urandom | base64")
            if production:
                raise ConfigError(problem)
            warnings.append(problem + " (accepted because production = false)")
    return config


def _read_audit(t: TomlTable) -> AuditConfig:
    retention = t.number("retention_days", 90.0, positive=False)
    if retention < 0:
        raise t.fail("retention_days", f"must be 0 (keep everything) or more, got {retention:g}")
    path = t.path("path", required=True)
    if path.is_dir():
        raise t.fail("path", f"{path} is a folder; name the database file, e.g. {path / 'audit.sqlite'}")
    return AuditConfig(path=path, store_face_images=t.boolean("store_face_images", False),
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
    warnings: list[str] = []
    kiosk = _read_kiosk(tables["kiosk"])
    policy = _read_policy(tables["policy"])
    api = _read_api(tables["api"], warnings)
    token = _read_token(tables["token"], kiosk.production, warnings)
    audit = _read_audit(tables["audit"])
    actuator = read_actuator_settings(tables["actuator"])
    console = _read_console(tables["console"], warnings)
    for table in tables.values():
        table.finish()
    for warning in warnings:
        log.warning("%s", warning)
    return KioskConfig(path=path, kiosk=kiosk, policy=policy, api=api, token=token, audit=audit, actuator=actuator,
                       warnings=tuple(warnings), console=console)


def read_kiosk_toml(path: Path) -> str:
    """kiosk.toml's text, or a one-line :class:`ConfigError` naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; start from deploy/kiosk.example.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None


def load_kiosk_config(path: Path | str) -> KioskConfig:
    path = Path(path)
    return parse_kiosk_config(read_kiosk_toml(path), path)
