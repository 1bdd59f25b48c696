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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import ConfigError
from edge.kiosk.config import KioskConfig, load_kiosk_config
from edge.kiosk.service import DecisionContext, PipelineHealth, build_kiosk_service
from edge.live.pipeline import FrameResult
from edge.policy import Decision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KioskRun:
    decisions: int
    grants: int
    drops: int


def _crop_bgr(result: FrameResult) -> np.ndarray | None:
    if result.sample is None:
        return None
    rgb = np.clip(result.sample.rgb.transpose(1, 2, 0) * 255.0, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def run_kiosk(config: KioskConfig | Path | str, frames: int | None = None, seed: int = 0,
              stop: threading.Event | None = None, detector: str = "auto",
              model_dir: Path | None = None) -> KioskRun:
    """Run until the source ends, ``frames`` decisions were made, or ``stop`` is set."""
    from edge.live.session import LiveOptions, LiveSession

    cfg = config if isinstance(config, KioskConfig) else load_kiosk_config(config)
    k = cfg.kiosk
    if k.production and not k.model_sha256:
        raise ConfigError(f"{cfg.path.name}: [kiosk] model_sha256 is required in production: pin the model with "
                          f"`sha256sum {k.model}`")
    options = LiveOptions(spec=k.source, model=k.model, expect_sha256=k.model_sha256, frames=frames, seed=seed,
                          policy=cfg.policy, detector=detector, model_dir=model_dir,
                          capture_process=k.capture_process, depth_filters=k.depth_filters, production=k.production)
    session = LiveSession(options)  # checks the source spec, then the model's hash, before anything opens
    grants = 0

    def health() -> PipelineHealth:
        camera = session.health_line()
        return PipelineHealth(ok=camera == "ok", camera=camera, runner=f"{session.runner.backend} ok",
                              policy=f"{session.decisions} decisions")

    try:
        service = build_kiosk_service(cfg, health)
        with service:

            def decisions() -> Iterator[tuple[Decision, DecisionContext]]:
                nonlocal grants
                seen: set[int] = set()
                for result in session:
                    d = result.decision
                    if d.live and d.attempt_id not in seen:
                        seen.add(d.attempt_id)
                        grants += 1
                    yield d, DecisionContext(session.model_sha256, k.source, _crop_bgr(result))

            handled = service.run(decisions(), stop)
    finally:
        session.close()
    return KioskRun(handled, grants, session.drops)
