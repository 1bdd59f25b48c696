"""The kiosk as a sink of the live loop: decisions to the door, the signed-decision API and the audit log.

The kiosk's counterpart of ``json`` or ``window`` (:mod:`edge.live.sinks`), built from kiosk.toml by
:func:`edge.kiosk.runtime.run_kiosk` around a started :class:`~edge.kiosk.service.KioskService`
rather than from a spec string: the actuator, the signing key and the API it drives come from the
configuration. The rules (audit before unlock, one grant per attempt, lock on failure) are the
service's; this class only adapts the loop's events to them, and hands each event to the installer
console's feed when the console is on (a reference kept, nothing encoded: :mod:`edge.kiosk.console.feed`).
"""

from __future__ import annotations

import numpy as np

from edge.kiosk.service import DecisionContext, KioskService
from edge.live.pipeline import FrameResult
from edge.live.sinks import LiveEvent


def crop_bgr(result: FrameResult) -> np.ndarray | None:
    """The scored face crop as 8-bit BGR (for ``[audit] store_face_images``), None without a face."""
    if result.sample is None:
        return None
    rgb = np.clip(result.sample.rgb.transpose(1, 2, 0) * 255.0, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


class KioskSink:
    """Every decision to ``service.handle`` with the model's hash and the camera's spec; counts the
    attempts the policy granted (the service drives the door at most once for each)."""

    def __init__(self, service: KioskService, model_sha256: str, camera: str) -> None:
        self.service, self.model_sha256, self.camera = service, model_sha256, camera
        self.handled = 0
        self._granted: set[int] = set()
        service.begin()

    @property
    def grants(self) -> int:
        return len(self._granted)

    def write(self, event: LiveEvent) -> bool:
        decision = event.result.decision
        if decision.live:
            self._granted.add(decision.attempt_id)
        self.service.handle(decision, DecisionContext(self.model_sha256, self.camera, crop_bgr(event.result)))
        if self.service.feed is not None:
            self.service.feed.offer(event)
        self.handled += 1
        return True

    def close(self, failure: BaseException | None = None) -> None:
        self.service.finish(failure)  # locks the door; a pipeline error is audited, then re-raised by the loop
