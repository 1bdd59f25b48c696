"""A door relay on a Jetson 40-pin header pin, driven through Jetson.GPIO.

Fail-secure wiring (docs/kiosk-setup.md): the relay is de-energised whenever the door must be
locked: at import, at start (``GPIO.setup(..., initial=<off level>)``), after each pulse, on
``lock()``, on ``close()`` and when the process dies (the pin floats back to its reset state, and
the relay module's own pull resistor keeps it off). Wire a fail-secure strike through the relay's
normally-open contact, so that power loss, a crashed service or a cut wire all leave it locked.

Jetson.GPIO only imports on a Jetson (elsewhere it raises a plain ``Exception`` "Could not determine
Jetson model"), so it is loaded inside :func:`open_gpio_relay`; tests inject a fake module with the
same API (``setmode``, ``setup``, ``output``, ``cleanup``, ``BOARD``, ``OUT``, ``HIGH``, ``LOW``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import ModuleType

from edge.errors import MissingExtraError, import_optional
from edge.kiosk.actuators.actuator import ActuatorError, ActuatorHealth
from edge.kiosk.toml_table import TomlTable
from edge.policy import Decision

log = logging.getLogger(__name__)

# Pins of the 40-pin header usable as GPIO on Jetson Nano/Orin Nano developer kits (NVIDIA's
# Jetson.GPIO pin tables, BOARD numbering); power and ground pins are refused at config time.
HEADER_PINS = range(1, 41)
POWER_AND_GROUND_PINS = frozenset({1, 2, 4, 6, 9, 14, 17, 20, 25, 30, 34, 39})
MAX_PULSE_S = 30.0  # an unlock longer than this is a misconfiguration, not a door opening


@dataclass(frozen=True)
class GpioRelayConfig:
    pin: int  # BOARD numbering: the physical pin of the 40-pin header
    active_high: bool = True  # relay energised by HIGH; many opto-isolated boards are active-low

    @classmethod
    def from_table(cls, table: TomlTable) -> GpioRelayConfig:
        pin = table.integer("pin", required=True, minimum=min(HEADER_PINS), maximum=max(HEADER_PINS))
        if pin in POWER_AND_GROUND_PINS:
            raise table.fail("pin", f"{pin} is a power or ground pin of the 40-pin header; pick a GPIO pin "
                                    "(e.g. 7, 11, 12, 13, 15)")
        return cls(pin=pin, active_high=table.boolean("active_high", True))


class GpioRelay:
    """Pulses one output pin: energise on ``unlock``, de-energise after ``duration_s`` on a timer."""

    kind = "gpio"

    def __init__(self, config: GpioRelayConfig, gpio: ModuleType) -> None:
        self.config = config
        self._gpio = gpio
        self._on = gpio.HIGH if config.active_high else gpio.LOW
        self._off = gpio.LOW if config.active_high else gpio.HIGH
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._energised = False
        self._closed = False
        self._write_error: str | None = None
        gpio.setmode(gpio.BOARD)
        try:
            gpio.setup(config.pin, gpio.OUT, initial=self._off)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ActuatorError(f"cannot drive header pin {config.pin} ({exc}); run as a member of the "
                                "'gpio' group (deploy/99-edgefas.rules) and check the pin number") from None

    def unlock(self, duration_s: float, decision: Decision) -> None:
        if not 0 < duration_s <= MAX_PULSE_S:
            raise ValueError(f"duration_s must be in (0, {MAX_PULSE_S}], got {duration_s}")
        with self._lock:
            if self._closed:
                raise ActuatorError("the GPIO relay is closed; restart the kiosk service")
            if self._timer is not None:
                self._timer.cancel()
            self._write(self._on)
            self._timer = threading.Timer(duration_s, self._release)
            self._timer.daemon = True
            self._timer.start()
        log.info("relay pin %d energised for %.1f s (attempt %d)", self.config.pin, duration_s, decision.attempt_id)

    def _release(self) -> None:
        with self._lock:
            if not self._closed:
                self._write(self._off)
            self._timer = None

    def _write(self, level: int) -> None:
        try:
            self._gpio.output(self.config.pin, level)
        except (RuntimeError, ValueError, OSError) as exc:
            self._write_error = str(exc)
            raise ActuatorError(f"writing header pin {self.config.pin} failed ({exc})") from None
        self._write_error = None
        self._energised = level == self._on

    def lock(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._closed:
                self._write(self._off)

    def health(self) -> ActuatorHealth:
        if self._closed:
            return ActuatorHealth(False, f"gpio BOARD pin {self.config.pin} released (closed)")
        if self._write_error is not None:
            return ActuatorHealth(False, f"gpio BOARD pin {self.config.pin} write failed ({self._write_error})")
        state = "energised (unlocked)" if self._energised else "de-energised (locked)"
        return ActuatorHealth(True, f"gpio BOARD pin {self.config.pin} {state}")

    def close(self) -> None:
        self.lock()
        with self._lock:
            if not self._closed:
                self._closed = True
                self._gpio.cleanup(self.config.pin)


def load_jetson_gpio() -> ModuleType:
    """Import Jetson.GPIO, turning its "not a Jetson" failure into a one-line error."""
    try:
        return import_optional("Jetson.GPIO", "jetson", "the GPIO relay actuator")
    except MissingExtraError:
        raise
    except Exception as exc:  # Jetson.GPIO raises a bare Exception when the board is not a Jetson
        raise ActuatorError(f"Jetson.GPIO cannot run on this machine ({exc}); the gpio actuator needs a "
                            "Jetson, use type = \"webhook\", \"mqtt\" or \"command\" elsewhere") from None


def open_gpio_relay(config: GpioRelayConfig) -> GpioRelay:
    return GpioRelay(config, load_jetson_gpio())
