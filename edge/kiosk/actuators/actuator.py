"""The ``Actuator`` interface and the one table that maps a config ``type`` to an implementation.

An actuator turns a granted decision into a physical or remote "open" (GPIO relay, HTTP webhook,
MQTT message, local command). Its contract is fail-secure: ``unlock`` either succeeds or raises
:class:`ActuatorError`, and the service logs and audits it and never retries the same attempt. Two
kinds of failure are told apart, because the audit must not claim what nobody knows: a plain
:class:`ActuatorError` means the command was not carried out (nothing was sent, the controller said
no); :class:`OutcomeUnknownError` means it was sent and no answer came in time (a webhook receiver
that answers after the timeout, a broker that did not acknowledge, a program killed mid-way), so the
door may have opened. ``health()`` says whether the actuator could drive the door right now.

Implementations are picked from :data:`ACTUATOR_KINDS` by the
``[actuator] type`` key, never from flags; each kind's module holds its config dataclass with a
``from_table(TomlTable)`` parser, so the table is the only place that lists them.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from edge.errors import ConfigError, EdgefasError
from edge.kiosk.toml_table import TomlTable
from edge.policy import Decision

log = logging.getLogger(__name__)


class ActuatorError(EdgefasError):
    """An actuator could not carry out a command. The door stays locked."""


class OutcomeUnknownError(ActuatorError):
    """A command was sent but whether it was carried out cannot be known (no answer within the timeout).

    A subclass of :class:`ActuatorError` so that every caller still treats it as "not confirmed"; the
    service audits it as ``unknown`` rather than ``failed``: the door may have opened.
    """


@dataclass(frozen=True)
class ActuatorHealth:
    """What ``/healthz`` shows for the actuator. ``ready`` is False when a grant could not open the door
    now (broker disconnected, last command to the controller failed, relay released for good)."""

    ready: bool
    line: str  # one line for an operator: what is driven and its last known state


@runtime_checkable
class Actuator(Protocol):
    """Opens the door for a granted decision.

    ``unlock`` returns once the command was delivered (relay energised, webhook answered 2xx,
    MQTT publish acknowledged, command exited 0) and raises :class:`ActuatorError` otherwise
    (:class:`OutcomeUnknownError` when it was sent but not confirmed). Re-locking after ``duration_s``
    is the actuator's (or the receiving controller's) job; ``lock`` forces it early. ``health`` is
    cheap and never raises (``/healthz`` calls it from API threads; it reads state, it sends nothing).
    ``close`` releases the hardware or connection and leaves the door locked. ``unlock``, ``lock`` and
    ``close`` are called from one thread at a time (the service's).
    """

    kind: str

    def unlock(self, duration_s: float, decision: Decision) -> None: ...

    def lock(self) -> None: ...

    def health(self) -> ActuatorHealth: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class NoActuatorConfig:
    """``type = "none"``: the kiosk application acts on the signed token itself; nothing is driven."""

    @classmethod
    def from_table(cls, table: TomlTable) -> NoActuatorConfig:
        return cls()


class NoActuator:
    kind = "none"

    def __init__(self, config: NoActuatorConfig) -> None:
        self.config = config
        self._grants = 0

    def unlock(self, duration_s: float, decision: Decision) -> None:
        self._grants += 1
        log.info("grant for attempt %d (no actuator configured; the kiosk app reads the token)",
                 decision.attempt_id)

    def lock(self) -> None:
        pass

    def health(self) -> ActuatorHealth:
        return ActuatorHealth(True, f"no actuator ({self._grants} grants)")

    def close(self) -> None:
        pass


def open_no_actuator(config: NoActuatorConfig) -> NoActuator:
    return NoActuator(config)


@dataclass(frozen=True)
class ActuatorKind:
    type: str
    summary: str
    config: str  # "module:Class" with a from_table(TomlTable) classmethod
    opener: str  # "module:function" taking the config, returning an Actuator


ACTUATOR_KINDS: tuple[ActuatorKind, ...] = (
    ActuatorKind("gpio", "a relay on a Jetson 40-pin header pin, pulsed through Jetson.GPIO",
                 "edge.kiosk.actuators.gpio_relay:GpioRelayConfig",
                 "edge.kiosk.actuators.gpio_relay:open_gpio_relay"),
    ActuatorKind("webhook", "an HTTP POST with an HMAC-SHA256-signed JSON body",
                 "edge.kiosk.actuators.webhook:WebhookConfig",
                 "edge.kiosk.actuators.webhook:open_webhook"),
    ActuatorKind("mqtt", "an MQTT v5 message (QoS 1, never retained, with message expiry)",
                 "edge.kiosk.actuators.mqtt_message:MqttConfig",
                 "edge.kiosk.actuators.mqtt_message:open_mqtt"),
    ActuatorKind("command", "a local program run with an argument list (no shell) and a timeout",
                 "edge.kiosk.actuators.command:CommandConfig",
                 "edge.kiosk.actuators.command:open_command"),
    ActuatorKind("none", "nothing driven: the kiosk application acts on the signed token",
                 "edge.kiosk.actuators.actuator:NoActuatorConfig",
                 "edge.kiosk.actuators.actuator:open_no_actuator"),
)


def _resolve(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def actuator_kind(type_name: str) -> ActuatorKind:
    for kind in ACTUATOR_KINDS:
        if kind.type == type_name:
            return kind
    raise ConfigError(f"unknown actuator type {type_name!r}; use one of: "
                      + ", ".join(k.type for k in ACTUATOR_KINDS))


@dataclass(frozen=True)
class ActuatorSettings:
    """The validated ``[actuator]`` table: its type and that type's own config dataclass."""

    type: str
    config: Any


def read_actuator_settings(table: TomlTable) -> ActuatorSettings:
    """Validate ``[actuator]`` at start-up (type first, then that type's keys; unknown keys refused)."""
    choices = tuple(k.type for k in ACTUATOR_KINDS)
    type_name = table.string("type", "none", choices=choices)
    config = _resolve(actuator_kind(type_name).config).from_table(table)
    table.finish()
    return ActuatorSettings(type_name, config)


def open_actuator(settings: ActuatorSettings) -> Actuator:
    """Build the actuator named by ``settings.type`` and log what was built."""
    actuator = _resolve(actuator_kind(settings.type).opener)(settings.config)
    log.info("actuator=%s %s", settings.type, actuator.health().line)
    return actuator
