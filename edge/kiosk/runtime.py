"""``edgefas kiosk``: the live pipeline as a door service (actuator, signed-decision API, audit log).

Start-up order is chosen so that nothing can open before every check passed: the configuration
(production requires a pinned model hash), then the source spec (production mode, on by default,
refuses every kind that is not a physical camera: ``edge.capture.source.check_source``), then the
model file's hash, then the audit log and actuator (locked), then the camera (production refuses a
software device, a USB 2 link or old firmware: ``edge.capture.realsense``), then decisions. A
refusal at the camera arrives from the session as a :class:`~edge.errors.ProductionError`: the
service audits it, locks the door and re-raises, so the process exits non-zero with that line.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ConfigError
from edge.kiosk.config import KioskConfig, load_kiosk_config
from edge.kiosk.console.health import DoorFacts
from edge.kiosk.service import PipelineHealth, build_kiosk_service

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KioskRun:
    decisions: int
    grants: int
    drops: int


def run_kiosk(config: KioskConfig | Path | str, frames: int | None = None, seed: int = 0,
              stop: threading.Event | None = None, detector: str = "auto",
              model_dir: Path | None = None) -> KioskRun:
    """Run until the source ends, ``frames`` decisions were made, or ``stop`` is set: the live loop
    (:func:`edge.live.loop.run_loop`) with the kiosk's sink (:class:`edge.kiosk.sink.KioskSink`)."""
    from edge.kiosk.sink import KioskSink
    from edge.live.loop import run_loop
    from edge.live.session import LiveOptions, LiveSession

    cfg = config if isinstance(config, KioskConfig) else load_kiosk_config(config)
    k = cfg.kiosk
    if k.production and not k.model_sha256:
        raise ConfigError(f"{cfg.path.name}: [kiosk] model_sha256 is required in production: pin the model with "
                          f"`sha256sum {k.model}`")
    options = LiveOptions(spec=k.source, model=k.model, expect_sha256=k.model_sha256, frames=frames, seed=seed,
                          policy=cfg.policy, detector=detector, model_dir=model_dir,
                          capture_process=k.capture_process, depth_filters=k.depth_filters, production=k.production,
                          face_first=k.face_first)
    session = LiveSession(options)  # checks the source spec, then the model's hash, before anything opens

    def health() -> PipelineHealth:
        camera = session.health_line()
        return PipelineHealth(ok=camera == "ok", camera=camera, runner=f"{session.runner.backend} ok",
                              policy=f"{session.decisions} decisions")

    def facts() -> DoorFacts:  # the console's health page
        report = getattr(session.source, "health", None)
        watchdog = session.health_line() if report is None else (
            f"{report.state.value}{': ' + report.reason if report.reason else ''}; "
            f"{report.reconnects} reconnects, {report.resets} resets")
        return DoorFacts(source=session.source.describe(), watchdog=watchdog, model_path=str(session.model_path),
                         model_sha256=session.model_sha256, runner=session.runner.backend)

    try:
        with build_kiosk_service(cfg, health, stop, facts) as service:  # stop: no grant after it, named in the audit
            sink = KioskSink(service, session.model_sha256, k.source)
            run_loop(session, [sink], stop)
    finally:
        session.close()
    return KioskRun(sink.handled, sink.grants, session.drops)
