"""Signed, short-lived decision tokens: what the kiosk API hands to a kiosk application (DESIGN §7).

Format: ``base64url(canonical JSON claims) "." base64url(signature)``, no padding. Canonical JSON is
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)`` in UTF-8,
so the signed bytes are exactly the transmitted bytes and a verifier never re-serialises.

Algorithms: ``HS256`` (HMAC-SHA256, RFC 2104, with a shared secret) and ``EdDSA`` (Ed25519,
RFC 8032, through ``cryptography``; the kiosk app holds only the public key). Each token names its
key by ``kid``, a fingerprint that does not reveal the key, so a verifier can tell "signed with
another key" from "altered after signing". The verifier only accepts its own algorithm: the ``alg``
claim is checked, never obeyed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from edge.errors import ConfigError, import_optional

HMAC_MIN_KEY_BYTES = 32  # RFC 2104 §3: keys shorter than the hash output (32 bytes for SHA-256) weaken it
# RFC 2104 §3 also asks for random keys. The estimate below gave a random 128-bit key written as 32 hex
# characters (NIST SP 800-57's smallest acceptable strength, the weakest secret we must accept) at least
# 94 bits in 100,000 draws; 'a' x 32 gets 0 and 'password' x 4 gets 22 (one repetition's worth).
MIN_SECRET_ENTROPY_BITS = 80
TOKEN_VERSION = 1


@dataclass(frozen=True)
class TokenClaims:
    """Everything a token binds. Times are Unix seconds on the device's clock."""

    nonce: str  # chosen by the caller: binds the answer to one question
    state: str  # "live", "spoof" or "unknown"
    reason: str
    score: float | None
    threshold: float | None
    attempt_id: int
    model_sha256: str
    camera_serial: str
    issued_at_s: float
    expires_at_s: float
    alg: str = ""
    kid: str = ""
    v: int = TOKEN_VERSION

    @property
    def live(self) -> bool:
        return self.state == "live"


class TokenRejected(Exception):
    """A token failed verification; ``code`` is one of malformed, wrong_key, altered, expired,
    replayed, nonce_mismatch. The kiosk application must treat any rejection as "not live"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class TokenKey(Protocol):
    """One signing algorithm. ``sign`` exists only on keys that hold the private part."""

    alg: str
    kid: str

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, message: bytes, signature: bytes) -> bool: ...


def estimated_entropy_bits(secret: bytes) -> float:
    """A coarse upper estimate of a secret's entropy: the Shannon entropy of the byte frequencies of its
    shortest repeating unit, times that unit's length (``passwordpassword`` is worth one ``password``).
    It catches repeated and few-character secrets; it cannot prove randomness (``0123456789abcdef``
    scores 64, ``abcdefghijklmnopqrstuvwxyz012345`` 160), so messages say how to make a random one."""
    n = len(secret)
    period = next(p for p in range(1, n + 1) if all(secret[i] == secret[i - p] for i in range(p, n))) if n else 0
    unit = secret[:period]
    if not unit:
        return 0.0
    per_byte = -sum(c / period * math.log2(c / period) for c in Counter(unit).values())
    return max(0.0, per_byte * period)


class HmacKey:
    """HMAC-SHA256 with a shared secret of at least 32 bytes."""

    alg = "HS256"

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes):
            raise TypeError(f"secret must be bytes, got {type(secret).__name__}")
        if len(secret) < HMAC_MIN_KEY_BYTES:
            raise ConfigError(f"the token secret has {len(secret)} bytes; use at least {HMAC_MIN_KEY_BYTES} "
                              "random bytes (e.g. head -c 32 /dev/urandom | base64)")
        self._secret = secret
        # A fingerprint made with the key itself: names the key without revealing anything about it.
        self.kid = hmac.new(secret, b"edgefas token key id", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"HmacKey(kid={self.kid})"

    def sign(self, message: bytes) -> bytes:
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def verify(self, message: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(message), signature)


class Ed25519Key:
    """Ed25519 through ``cryptography``; built from a private key (signs) or a public key (verifies)."""

    alg = "EdDSA"

    def __init__(self, private_key: object | None = None, public_key: object | None = None) -> None:
        serialization = import_optional("cryptography.hazmat.primitives.serialization", "kiosk",
                                        "Ed25519 decision tokens")
        if private_key is None and public_key is None:
            raise ValueError("Ed25519Key needs private_key or public_key")
        self._private = private_key
        self._public = public_key if public_key is not None else private_key.public_key()
        raw = self._public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.kid = hashlib.sha256(raw).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Ed25519Key(kid={self.kid}, private={self._private is not None})"

    @classmethod
    def from_pem(cls, pem: bytes) -> Ed25519Key:
        """Load a PEM private key (device side) or public key (kiosk application side)."""
        serialization = import_optional("cryptography.hazmat.primitives.serialization", "kiosk",
                                        "Ed25519 decision tokens")
        ed25519 = import_optional("cryptography.hazmat.primitives.asymmetric.ed25519", "kiosk",
                                  "Ed25519 decision tokens")
        try:
            if b"PRIVATE KEY" in pem:
                key = serialization.load_pem_private_key(pem, password=None)
                if not isinstance(key, ed25519.Ed25519PrivateKey):
                    raise ConfigError("the token key file holds a private key that is not Ed25519; "
                                      "make one with: openssl genpkey -algorithm ed25519")
                return cls(private_key=key)
            key = serialization.load_pem_public_key(pem)
        except ValueError as exc:
            raise ConfigError(f"the token key file is not a PEM key ({exc}); "
                              "make one with: openssl genpkey -algorithm ed25519") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ConfigError("the token key file holds a public key that is not Ed25519")
        return cls(public_key=key)

    def public_only(self) -> Ed25519Key:
        return Ed25519Key(public_key=self._public)

    def sign(self, message: bytes) -> bytes:
        if self._private is None:
            raise ValueError("this Ed25519Key holds only a public key and cannot sign")
        return self._private.sign(message)

    def verify(self, message: bytes, signature: bytes) -> bool:
        exceptions = import_optional("cryptography.exceptions", "kiosk", "Ed25519 decision tokens")
        try:
            self._public.verify(signature, message)
        except exceptions.InvalidSignature:
            return False
        return True


def canonical_json(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(claims: TokenClaims, key: TokenKey) -> str:
    """Serialise and sign; ``alg`` and ``kid`` are filled in from the key."""
    body = asdict(claims)
    body["alg"], body["kid"] = key.alg, key.kid
    for name in ("score", "threshold"):
        if body[name] is not None and not math.isfinite(body[name]):
            body[name] = None  # JSON has no NaN; "no score" is what a NaN means here anyway
    payload = canonical_json(body)
    return _b64encode(payload) + "." + _b64encode(key.sign(payload))


class TokenVerifier:
    """Checks tokens in the order malformed → wrong_key → altered → expired → replayed.

    Thread-safe. Nonces are remembered until their token would have expired anyway (an expired
    token is refused for that reason), so memory stays bounded by the token lifetime.
    """

    def __init__(self, key: TokenKey, clock: Callable[[], float], max_nonces: int = 100_000) -> None:
        self.key = key
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._max_nonces = max_nonces
        self._lock = threading.Lock()

    def verify(self, token: str, expected_nonce: str | None = None) -> TokenClaims:
        """Return the claims, or raise :class:`TokenRejected` with a distinct code."""
        if not isinstance(token, str) or token.count(".") != 1:
            raise TokenRejected("malformed", "a token is two base64url parts joined by '.'")
        payload_b64, signature_b64 = token.split(".")
        try:
            payload, signature = _b64decode(payload_b64), _b64decode(signature_b64)
            body = json.loads(payload.decode("utf-8"))
        except (binascii.Error, ValueError) as exc:
            raise TokenRejected("malformed", f"cannot decode the token ({exc})") from None
        if not isinstance(body, dict):
            raise TokenRejected("malformed", "the claims are not a JSON object")
        if body.get("alg") != self.key.alg or body.get("kid") != self.key.kid:
            raise TokenRejected("wrong_key", f"signed with {body.get('alg')}/{body.get('kid')}, "
                                             f"this verifier holds {self.key.alg}/{self.key.kid}")
        if not self.key.verify(payload, signature):
            raise TokenRejected("altered", "the signature does not match the claims")
        try:
            claims = TokenClaims(**body)
        except TypeError as exc:
            raise TokenRejected("malformed", f"unexpected claims ({exc})") from None
        now = self._clock()
        if not now < claims.expires_at_s:
            raise TokenRejected("expired", f"expired {now - claims.expires_at_s:.1f} s ago")
        if expected_nonce is not None and not hmac.compare_digest(claims.nonce, expected_nonce):
            raise TokenRejected("nonce_mismatch", "the token answers another request")
        with self._lock:
            self._seen = {n: exp for n, exp in self._seen.items() if exp > now}
            if claims.nonce in self._seen:
                raise TokenRejected("replayed", "this nonce was already used")
            if len(self._seen) >= self._max_nonces:
                raise TokenRejected("replayed", "too many outstanding nonces; refusing to verify more")
            self._seen[claims.nonce] = claims.expires_at_s
        return claims
