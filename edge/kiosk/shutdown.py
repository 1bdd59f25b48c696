"""Stopping the kiosk on SIGTERM (``systemctl stop``) and SIGINT (Ctrl-C): lock, audit, exit 0.

Without a handler SIGTERM ends Python at once: no lock command, no audit row, the door left as it
was. :func:`stop_on_signals` turns the first SIGTERM or SIGINT into a :class:`StopRequest`, which
:meth:`edge.kiosk.service.KioskService.run` checks before and after every decision: no grant is
made once a stop was asked for, the loop ends, the door is locked and the service writes its stop
row naming the signal, and the process exits 0 (what systemd expects of a clean stop). The loop sees
the request within one decision: the live session yields one at least every ``stall_timeout_s``
(2 s) even when the camera is silent, so a stop takes about that plus the actuator's lock timeout,
well inside systemd's default ``TimeoutStopSec`` of 90 s. A second signal while stopping raises
``KeyboardInterrupt`` (an operator insisting); the service still locks on the way out
(``KioskService.__exit__``) and the CLI exits 130.

The handler only sets an event: a Python signal handler runs between two bytecodes of the main
thread, and doing real work there (logging, I/O) could interleave with whatever it interrupted.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest(threading.Event):
    """A :class:`threading.Event` that also says why it was set (the first reason wins)."""

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
        self.set()


def stop_reason(stop: threading.Event) -> str:
    """What a service stopped by ``stop`` writes in its audit row."""
    reason = stop.reason if isinstance(stop, StopRequest) else None
    return f"stopped: {reason}" if reason else "stopped: stop requested"


@contextmanager
def stop_on_signals(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[StopRequest]:
    """Install the handlers for the ``with`` block and restore the previous ones after it.

    Signal handlers can only be installed from the main thread; elsewhere (an embedding application's
    worker) the request is returned without handlers and the caller sets it itself.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        log.debug("not the main thread: no signal handlers installed; set the StopRequest to stop")
        yield stop
        return

    def handle(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            raise KeyboardInterrupt(f"{name} while stopping")
        stop.request(f"{name} received")

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
