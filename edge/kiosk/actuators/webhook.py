"""An HTTP webhook actuator: POST a signed JSON body to a door controller.

Signature scheme (the receiver's contract, docs/kiosk-setup.md): header ``X-Edgefas-Timestamp`` is
the Unix time in whole seconds; header ``X-Edgefas-Signature`` is ``sha256=`` followed by the hex
HMAC-SHA256 (RFC 2104) of ``timestamp + "." + body`` under the shared secret. Binding the timestamp
stops a captured request from being replayed later; the body's ``event_id`` lets a receiver drop
duplicates inside its tolerance window.

Fail-secure: only a 2xx answer within the timeout counts. Any other status, a redirect (never
followed: a redirected unlock is not the unlock that was configured) or a connection that could not
be made or could not carry the whole request raises :class:`ActuatorError`: the receiver never had
the command, the door stays locked. Once the whole request was sent, no answer within the timeout (or
a connection closed before the status line) raises :class:`OutcomeUnknownError`: a slow receiver may
well have unlocked after we stopped waiting, and the audit must not say the door stayed locked.
urllib draws the line for us: what fails while connecting or sending arrives wrapped in ``URLError``,
what fails while waiting for the answer arrives as the socket's own exception.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from edge.kiosk.actuators.actuator import ActuatorError, ActuatorHealth, OutcomeUnknownError
from edge.kiosk.toml_table import Secret, TomlTable
from edge.policy import Decision

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Edgefas-Signature"
TIMESTAMP_HEADER = "X-Edgefas-Timestamp"


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: Secret
    timeout_s: float = 2.0  # no answer within this long: the outcome is unknown (audited as such)

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
        self._failed = False

    def _post(self, body: dict) -> None:
        payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
        timestamp = str(int(self._clock()))
        request = urllib.request.Request(
            self.config.url, data=payload, method="POST",
            headers={"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                     SIGNATURE_HEADER: sign_webhook(self.config.secret.reveal(), timestamp, payload),
                     "User-Agent": "edgefas-kiosk"})
        host, action = urlsplit(self.config.url).netloc, body["action"]
        try:
            with self._opener.open(request, timeout=self.config.timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except urllib.error.URLError as exc:  # connecting or sending failed: the receiver has no command
            self._record(f"{action} failed: {host} unreachable ({exc.reason})", failed=True)
            raise ActuatorError(f"webhook {host} unreachable ({exc.reason}); the door stays locked") from None
        except (OSError, http.client.HTTPException) as exc:  # sent, but no answer: timeout, reset, closed
            what = f"no answer within {self.config.timeout_s:g} s" if isinstance(exc, TimeoutError) else \
                f"no answer ({type(exc).__name__}: {exc})"
            self._record(f"{action} outcome unknown: {what}", failed=True)
            raise OutcomeUnknownError(f"webhook {host} got the {action} request but gave {what}; the receiver "
                                      "may have carried it out (outcome unknown)") from None
        if not 200 <= status < 300:
            self._record(f"{action} failed: HTTP {status}", failed=True)
            raise ActuatorError(f"webhook {host} answered HTTP {status}; the door stays locked")
        self._record(f"{action} ok (HTTP {status})", failed=False)

    def _record(self, last: str, *, failed: bool) -> None:
        self._last, self._failed = last, failed

    def unlock(self, duration_s: float, decision: Decision) -> None:
        self._post({"action": "unlock", "duration_s": duration_s, "attempt_id": decision.attempt_id,
                    "reason": decision.reason, "score": decision.score, "event_id": uuid.uuid4().hex,
                    "sent_at_s": self._clock()})

    def lock(self) -> None:
        self._post({"action": "lock", "event_id": uuid.uuid4().hex, "sent_at_s": self._clock()})

    def health(self) -> ActuatorHealth:
        """Known only from the last request (the service locks at start, so there is always one): a
        receiver that failed the last command is reported not ready until a command succeeds. No probe
        request is sent: every request the receiver sees is a signed command it must act on."""
        return ActuatorHealth(not self._failed, f"webhook {urlsplit(self.config.url).netloc}: {self._last}")

    def close(self) -> None:
        pass


def open_webhook(config: WebhookConfig) -> Webhook:
    return Webhook(config)
