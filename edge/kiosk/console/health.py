"""The health page's content: the camera, the model, the runner and the loop, one line each.

The camera's serial, firmware and USB link come from the line the source resolved at start
(``describe()``: ``... serial=943222071234 ... fw=5.16.0.1 usb=3.2``; rs_pipeline's StreamInfo), so
the page shows what the door actually opened; a source that has no such field (a rendered world in
a test) shows "-".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.kiosk.console.feed import FeedStatus

FIELD = re.compile(r"\b(serial|fw|usb)=(\S+)")


@dataclass(frozen=True)
class DoorFacts:
    """What the kiosk's runtime knows about the door's parts (provided by edge.kiosk.runtime)."""

    source: str  # the source's describe() line
    watchdog: str  # state, and the last failure's reason when not ok
    model_path: str
    model_sha256: str
    runner: str


def camera_fields(describe: str) -> dict[str, str]:
    found = dict(FIELD.findall(describe))
    return {"serial": found.get("serial", "-"), "firmware": found.get("fw", "-"), "usb": found.get("usb", "-")}


def uptime_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days} d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def health_rows(facts: DoorFacts, status: FeedStatus, down: tuple[str, ...], uptime_s: float
                ) -> list[tuple[str, str]]:
    camera = camera_fields(facts.source)
    threshold = "-" if status.threshold is None else f"{status.threshold:.4f}"
    return [
        ("door", "ok" if not down else "down: " + ", ".join(down)),
        ("camera serial", camera["serial"]),
        ("camera firmware", camera["firmware"]),
        ("USB link", camera["usb"]),
        ("source", facts.source),
        ("frames per second", f"{status.fps:.1f}"),
        ("frames dropped", str(status.drops)),
        ("watchdog", facts.watchdog),
        ("model file", facts.model_path),
        ("model sha256", facts.model_sha256),
        ("runner", facts.runner),
        ("threshold", threshold),
        ("decisions", str(status.frame)),
        ("uptime", uptime_text(uptime_s)),
    ]


FactsProvider = Callable[[], DoorFacts]
