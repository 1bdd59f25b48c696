"""Decision tokens: valid ones verify; replayed, expired, altered and wrong-key ones are refused distinctly."""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from edge.errors import ConfigError
from edge.kiosk.tokens import Ed25519Key, HmacKey, TokenClaims, TokenRejected, TokenVerifier, sign_token


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def claims(nonce: str = "n" * 24, issued: float = 1000.0, ttl: float = 10.0, **extra) -> TokenClaims:
    fields = dict(nonce=nonce, state="live", reason="8 of the last 10 frames looked live", score=0.12,
                  threshold=0.5, attempt_id=7, model_sha256="ab" * 32, camera_serial="123456789012",
                  issued_at_s=issued, expires_at_s=issued + ttl)
    fields.update(extra)
    return TokenClaims(**fields)


def ed25519_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def keys():
    pem = ed25519_pem()
    device = Ed25519Key.from_pem(pem)
    return [
        pytest.param(HmacKey(secrets.token_bytes(32)), None, id="hmac"),
        pytest.param(device, device.public_only(), id="ed25519"),
    ]


@pytest.mark.parametrize(("signer", "verifier_key"), keys())
def test_valid_token_verifies_once(signer, verifier_key):
    clock = Clock(1001.0)
    verifier = TokenVerifier(verifier_key or signer, clock)
    token = sign_token(claims(), signer)
    got = verifier.verify(token, expected_nonce="n" * 24)
    assert got.live and got.attempt_id == 7 and got.score == pytest.approx(0.12)
    assert got.alg == signer.alg and got.kid == signer.kid
    with pytest.raises(TokenRejected) as replay:
        verifier.verify(token)
    assert replay.value.code == "replayed"


@pytest.mark.parametrize(("signer", "verifier_key"), keys())
def test_expired_token_is_refused(signer, verifier_key):
    verifier = TokenVerifier(verifier_key or signer, Clock(1010.0))
    with pytest.raises(TokenRejected) as info:
        verifier.verify(sign_token(claims(ttl=10.0), signer))
    assert info.value.code == "expired"


@pytest.mark.parametrize(("signer", "verifier_key"), keys())
def test_altered_token_is_refused(signer, verifier_key):
    verifier = TokenVerifier(verifier_key or signer, Clock(1001.0))
    payload_b64, signature = sign_token(claims(state="spoof", score=0.93), signer).split(".")
    body = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    body["state"], body["score"] = "live", 0.01
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenRejected) as info:
        verifier.verify(forged + "." + signature)
    assert info.value.code == "altered"


@pytest.mark.parametrize(("signer", "verifier_key"), keys())
def test_wrong_key_is_refused(signer, verifier_key):
    other = HmacKey(secrets.token_bytes(32)) if isinstance(signer, HmacKey) else Ed25519Key.from_pem(ed25519_pem())
    verifier = TokenVerifier(verifier_key or signer, Clock(1001.0))
    with pytest.raises(TokenRejected) as info:
        verifier.verify(sign_token(claims(), other))
    assert info.value.code == "wrong_key"


def test_algorithm_confusion_is_wrong_key():
    """A token claiming HS256 must not be checked against an Ed25519 verifier's public bytes, or vice versa."""
    hmac_key = HmacKey(secrets.token_bytes(32))
    verifier = TokenVerifier(Ed25519Key.from_pem(ed25519_pem()).public_only(), Clock(1001.0))
    with pytest.raises(TokenRejected) as info:
        verifier.verify(sign_token(claims(), hmac_key))
    assert info.value.code == "wrong_key"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "!!!.???", "e30.AAAA"])
def test_malformed_tokens(token):
    verifier = TokenVerifier(HmacKey(secrets.token_bytes(32)), Clock(0.0))
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    assert info.value.code in ("malformed", "wrong_key")


def test_nonce_mismatch_and_canonical_bytes():
    key = HmacKey(secrets.token_bytes(32))
    token = sign_token(claims(nonce="a" * 20), key)
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    body = json.loads(payload)
    assert payload == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(TokenRejected) as info:
        TokenVerifier(key, Clock(1001.0)).verify(token, expected_nonce="b" * 20)
    assert info.value.code == "nonce_mismatch"


def test_nan_score_is_sent_as_null():
    key = HmacKey(secrets.token_bytes(32))
    got = TokenVerifier(key, Clock(1001.0)).verify(sign_token(claims(score=float("nan"), state="unknown"), key))
    assert got.score is None and not got.live


def test_short_secret_and_bad_pem_are_config_errors():
    with pytest.raises(ConfigError, match="at least 32"):
        HmacKey(b"too short")
    with pytest.raises(ConfigError, match="ed25519"):
        Ed25519Key.from_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


def test_secret_is_not_in_repr():
    secret = secrets.token_bytes(32)
    assert secret.hex() not in repr(HmacKey(secret)) and "kid=" in repr(HmacKey(secret))
