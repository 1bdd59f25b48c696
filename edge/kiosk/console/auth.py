"""Who may see the console: one password, server-side sessions, CSRF tokens, a login rate limit.

- A login checks the password against the scrypt hash from kiosk.toml
  (:mod:`edge.kiosk.console.password`) and starts a session: a random 256-bit id, kept here (so a
  logout or a restart ends it for good) and given to the browser as a cookie the page's scripts
  cannot read (``HttpOnly``) and that no other site can make the browser send (``SameSite=Strict``).
- Every session has its own CSRF token; every POST carries it in a form field and is refused
  without it. The login form, which has no session yet, uses a double-submit token: a random value
  in a short-lived cookie and the same value in the form.
- Logins are rate-limited per address: ``LOGIN_BURST`` tries at once, then one every
  ``60 / LOGIN_PER_MINUTE`` seconds (:class:`~edge.kiosk.rate_limit.RateLimiter`).
- A session ends after ``idle_s`` without a request; at most ``MAX_SESSIONS`` live at once (the
  oldest is ended first).

Time is an input (``clock``, monotonic seconds). Thread-safe.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from edge.kiosk.console.password import PasswordHash
from edge.kiosk.rate_limit import RateLimiter

SESSION_COOKIE, LOGIN_COOKIE = "edgefas_console", "edgefas_login"
TOKEN_BYTES = 32  # 256-bit session ids and CSRF tokens (OWASP Session Management: at least 64 bits of entropy)
# A person who mistypes needs a few tries; a guesser gets 5 a minute against a scrypt hash. The
# lock-out is per address: the console listens on loopback unless configured otherwise.
LOGIN_BURST, LOGIN_PER_MINUTE = 5, 5.0
LOGIN_FORM_TTL_S = 600  # the login form's double-submit cookie lives ten minutes
MAX_SESSIONS = 16  # an installer, a colleague, a laptop and a phone; more is a leak, not a use


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str
    peer: str
    last_s: float


class ConsoleAuth:
    def __init__(self, password: PasswordHash, idle_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._password = password
        self.idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self.login_limiter = RateLimiter(LOGIN_PER_MINUTE / 60.0, LOGIN_BURST, clock)

    def login_wait_s(self, peer: str) -> float:
        """Take one login try for ``peer``: 0.0 when it may try now, else the seconds to wait."""
        return self.login_limiter.admit(peer)

    def login(self, peer: str, password: str) -> Session | None:
        """A new session when ``password`` is right, else None (the caller audits either way)."""
        if not self._password.verify(password):
            return None
        session = Session(secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES), peer, self._clock())
        with self._lock:
            self._sessions[session.token] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie value (its idle time restarts), or None."""
        if not token:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if now - session.last_s > self.idle_s:
                del self._sessions[token]
                return None
            session = self._sessions[token] = replace(session, last_s=now)
            self._sessions.move_to_end(token)
            return session

    def logout(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    @property
    def active(self) -> int:
        now = self._clock()
        with self._lock:
            return sum(1 for s in self._sessions.values() if now - s.last_s <= self.idle_s)


def new_form_token() -> str:
    """The login form's double-submit value (cookie and hidden field)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token; a missing one never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())
