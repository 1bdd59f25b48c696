"""A per-client token bucket for the kiosk API: a misbehaving caller gets 429, the others are served.

Each client address has a bucket of ``burst`` tokens refilled at ``rate_per_s``; a request takes one
token or is refused with the seconds until one is back (``Retry-After``). Defaults: a kiosk
application asks once per attempt (the policy starts at most ``max_attempts_per_minute`` = 6 a
minute) and a health monitor probes every few seconds, so 5 requests a second sustained and 20 in a
burst leave legitimate use an order of magnitude of room while a flood is cut to 5 audited answers a
second. Memory is bounded: at most ``max_clients`` buckets; the least recently seen is forgotten
(it starts full again when that client returns). Time is an input (``clock``, monotonic seconds).
Framework-free, like :mod:`edge.kiosk.refusals`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_RATE_PER_S = 5.0
DEFAULT_BURST = 20
MAX_CLIENTS = 1024  # buckets kept; a loopback or LAN API sees a handful of callers


class RateLimiter:
    """Thread-safe token buckets keyed by client address."""

    def __init__(self, rate_per_s: float = DEFAULT_RATE_PER_S, burst: int = DEFAULT_BURST,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be positive, got {rate_per_s}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be a positive integer, got {burst!r}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._max_clients = max_clients
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at_s)

    def admit(self, client: str) -> float:
        """Take a token for ``client``: 0.0 when admitted, else the seconds until a token is back."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate_per_s)
            wait_s = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait_s = (1.0 - tokens) / self.rate_per_s
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
        return wait_s
