"""An HTTP webhook actuator: POST a signed JSON body to a door controller.

Signature scheme (the receiver's contract, docs/kiosk-setup.md): header ``X-Edgefas-Timestamp`` is
the Unix time in whole seconds; header ``X-Edgefas-Signature`` is ``sha256=`` followed by the hex
HMAC-SHA256 (RFC 2104) of ``timestamp + "." + body`` under the shared secret. Binding the timestamp
stops a captured request from being replayed later; the body's ``event_id`` lets a receiver drop
duplicates inside its tolerance window.

Fail-secure: only a 2xx answer within the timeout counts. Any other status, a redirect (never
followed: a redirected unlock is not the unlock that was configured), a timeout or a refused
connection raises :class:`ActuatorError` and the door stays locked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from edge.kiosk.actuators.actuator import ActuatorError
from edge.kiosk.toml_table import Secret, TomlTable
from edge.policy import Decision

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Edgefas-Signature"
TIMESTAMP_HEADER = "X-Edgefas-Timestamp"


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: Secret
    timeout_s: float = 2.0  # a door that answers later than this is treated as unreachable

    @classmethod
    def from_table(cls, table: TomlTable) -> WebhookConfig:
        url = table.string("url", required=True)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise table.fail("url", f"must be an http:// or https:// URL, got {json.dumps(url)}")
        return cls(url=url, secret=table.secret("secret"), timeout_s=table.number("timeout_s", 2.0))


def sign_webhook(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Edgefas-Signature`` value for a body sent at ``timestamp`` (receivers call this too)."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None  # urllib then raises HTTPError for the 3xx: a failure, as it should be


class Webhook:
    """One POST per command; no connection is kept between doors openings."""

    kind = "webhook"

    def __init__(self, config: WebhookConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._last = "no request yet"

    def _post(self, body: dict) -> None:
        payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
        timestamp = str(int(self._clock()))
        request = urllib.request.Request(
            self.config.url, data=payload, method="POST",
            headers={"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                     SIGNATURE_HEADER: sign_webhook(self.config.secret.reveal(), timestamp, payload),
                     "User-Agent": "edgefas-kiosk"})
        host = urlsplit(self.config.url).netloc
        try:
            with self._opener.open(request, timeout=self.config.timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            self._last = f"{body['action']} failed: {host} unreachable ({reason})"
            raise ActuatorError(f"webhook {host} unreachable ({reason}); the door stays locked") from None
        if not 200 <= status < 300:
            self._last = f"{body['action']} failed: HTTP {status}"
            raise ActuatorError(f"webhook {host} answered HTTP {status}; the door stays locked")
        self._last = f"{body['action']} ok (HTTP {status})"

    def unlock(self, duration_s: float, decision: Decision) -> None:
        self._post({"action": "unlock", "duration_s": duration_s, "attempt_id": decision.attempt_id,
                    "reason": decision.reason, "score": decision.score, "event_id": uuid.uuid4().hex,
                    "sent_at_s": self._clock()})

    def lock(self) -> None:
        self._post({"action": "lock", "event_id": uuid.uuid4().hex, "sent_at_s": self._clock()})

    def health(self) -> str:
        return f"webhook {urlsplit(self.config.url).netloc}: {self._last}"

    def close(self) -> None:
        pass


def open_webhook(config: WebhookConfig) -> Webhook:
    return Webhook(config)
