"""Stop requests: SIGTERM/SIGINT become a StopRequest (what the service does with it is in
test_kiosk_service.py; the real process stopped by a signal in test_kiosk_lifecycle.py)."""

from __future__ import annotations

import signal

import pytest

from edge.kiosk.shutdown import stop_on_signals


def test_sigterm_becomes_a_stop_request_and_a_second_signal_insists():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with stop_on_signals() as stop:
        assert not stop.is_set()
        signal.raise_signal(signal.SIGTERM)
        assert stop.wait(10) and stop.reason == "SIGTERM received"
        with pytest.raises(KeyboardInterrupt, match="SIGINT while stopping"):
            signal.raise_signal(signal.SIGINT)
        assert stop.reason == "SIGTERM received"  # the first reason is the one audited
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # restored
