"""The console's password hash: scrypt from the standard library, stored in kiosk.toml as one string.

Format: ``scrypt$<log2 N>$<r>$<p>$<salt, base64>$<key, base64>``; the parameters travel with the hash
so a stronger setting later still verifies old hashes. Defaults are OWASP's Password Storage Cheat
Sheet minimum for scrypt (N = 2^17, r = 8, p = 1: 128 MiB and a few hundred milliseconds per try),
which also bounds how fast a stolen kiosk.toml can be guessed against. ``edgefas kiosk-password``
makes one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "scrypt"
LOG2_N, BLOCK_R, PARALLEL_P = 17, 8, 1  # OWASP Password Storage Cheat Sheet, scrypt minimum
LOG2_N_RANGE = (14, 20)  # below 2^14 a guess costs too little; above 2^20 (1 GiB) a Jetson runs out of memory
SALT_BYTES, KEY_BYTES = 16, 32


class PasswordHashError(ValueError):
    """A password hash string that is not in the format above; the message says what is wrong."""


@dataclass(frozen=True)
class PasswordHash:
    log2_n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def __str__(self) -> str:
        b64 = base64.b64encode
        return f"{PREFIX}${self.log2_n}${self.r}${self.p}${b64(self.salt).decode()}${b64(self.key).decode()}"

    def verify(self, password: str) -> bool:
        """True when ``password`` makes this key; constant-time comparison."""
        return hmac.compare_digest(_derive(password, self.salt, self.log2_n, self.r, self.p), self.key)


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES,
                          maxmem=2 * 128 * r * n * p + (1 << 20))  # scrypt needs 128·r·N·p bytes; room for it


def hash_password(password: str, *, log2_n: int = LOG2_N) -> PasswordHash:
    if not password:
        raise ValueError("the console password must not be empty")
    salt = secrets.token_bytes(SALT_BYTES)
    return PasswordHash(log2_n, BLOCK_R, PARALLEL_P, salt, _derive(password, salt, log2_n, BLOCK_R, PARALLEL_P))


def parse_password_hash(text: str) -> PasswordHash:
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != PREFIX:
        raise PasswordHashError("must look like scrypt$17$8$1$<salt>$<key>; make one with `edgefas kiosk-password`")
    try:
        log2_n, r, p = (int(x) for x in parts[1:4])
        salt, key = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise PasswordHashError("has unreadable numbers or base64; make a new one with "
                                "`edgefas kiosk-password`") from None
    low, high = LOG2_N_RANGE
    if not low <= log2_n <= high or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise PasswordHashError(f"has scrypt parameters out of range (log2 N {low}..{high}, r 1..32, p 1..16)")
    if len(salt) < 8 or len(key) != KEY_BYTES:
        raise PasswordHashError(f"needs a salt of at least 8 bytes and a {KEY_BYTES}-byte key")
    return PasswordHash(log2_n, r, p, salt, key)
