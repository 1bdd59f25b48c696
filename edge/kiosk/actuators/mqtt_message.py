"""An MQTT v5 actuator: one short-lived unlock message per grant (paho-mqtt 2.x).

Why each setting (MQTT Version 5.0, OASIS Standard, 2019):
- ``retain=False`` always: a retained unlock would be delivered again to every controller that
  (re)subscribes later, i.e. the door would open on a reconnect (§3.3.1.3).
- Message Expiry Interval (§3.3.2.3.3) of a few seconds: a broker holding the message for an
  offline controller drops it instead of opening the door minutes later. The body also carries
  ``expires_at_s`` for controllers that check it themselves.
- QoS 1 and waiting for the PUBACK: ``unlock`` returns only once the broker has the message.
- No publishing while disconnected: paho would queue the message and send it whenever the
  connection comes back, which is exactly the late unlock expiry is meant to prevent.
- A publish sent but not acknowledged within ``publish_timeout_s`` has an unknown outcome
  (:class:`OutcomeUnknownError`): the broker may have it and deliver it. ``health()`` is ready only
  while connected: a disconnected broker cannot open the door, and ``/healthz`` answers 503.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import import_optional
from edge.kiosk.actuators.actuator import ActuatorError, ActuatorHealth, OutcomeUnknownError
from edge.kiosk.toml_table import Secret, TomlTable
from edge.policy import Decision

log = logging.getLogger(__name__)

MQTT_PORT = 1883  # IANA-registered port for MQTT without TLS (8883 with TLS)
MQTT_TLS_PORT = 8883


@dataclass(frozen=True)
class MqttConfig:
    host: str
    topic: str
    port: int = MQTT_PORT
    client_id: str = ""
    username: str | None = None
    password: Secret | None = None
    tls: bool = False
    ca_file: Path | None = None
    message_expiry_s: int = 5  # how long the broker may hold an unlock for an absent controller
    publish_timeout_s: float = 2.0  # wait for the broker's PUBACK (and for a connection) this long
    keepalive_s: int = 30  # MQTT keep-alive; the broker drops us after 1.5x this without traffic

    @classmethod
    def from_table(cls, table: TomlTable) -> MqttConfig:
        host = table.string("host", required=True)
        topic = table.string("topic", required=True)
        if not topic or any(c in topic for c in "#+\0"):
            raise table.fail("topic", f"must be a plain topic name without wildcards, got {json.dumps(topic)}")
        tls = table.boolean("tls", False)
        username = table.string("username")
        password = table.secret("password", required=False)
        if password is not None and username is None:
            raise table.fail("username", "is needed when a password is configured")
        return cls(host=host, topic=topic,
                   port=table.integer("port", MQTT_TLS_PORT if tls else MQTT_PORT, minimum=1, maximum=65535),
                   client_id=table.string("client_id", f"edgefas-kiosk-{socket.gethostname()}"),
                   username=username, password=password, tls=tls, ca_file=table.path("ca_file"),
                   message_expiry_s=table.integer("message_expiry_s", 5, minimum=1, maximum=3600),
                   publish_timeout_s=table.number("publish_timeout_s", 2.0),
                   keepalive_s=table.integer("keepalive_s", 30, minimum=5, maximum=3600))


class MqttPublisher:
    """Keeps one connection (paho's network thread reconnects) and publishes a message per command."""

    kind = "mqtt"

    def __init__(self, config: MqttConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._mqtt = import_optional("paho.mqtt.client", "kiosk", "the MQTT actuator")
        properties = import_optional("paho.mqtt.properties", "kiosk", "the MQTT actuator")
        packettypes = import_optional("paho.mqtt.packettypes", "kiosk", "the MQTT actuator")
        self._properties_class, self._publish_type = properties.Properties, packettypes.PacketTypes.PUBLISH
        self._connected = threading.Event()
        self._last = "connecting"
        client = self._mqtt.Client(self._mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id,
                                   protocol=self._mqtt.MQTTv5)
        if config.username is not None:
            password = config.password.reveal().decode("utf-8") if config.password else None
            client.username_pw_set(config.username, password)
        if config.tls:
            client.tls_set(ca_certs=str(config.ca_file) if config.ca_file else None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client = client
        client.connect_async(config.host, config.port, keepalive=config.keepalive_s)
        client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._last = f"broker refused the connection ({reason_code})"
            log.warning("mqtt %s:%d refused the connection: %s", self.config.host, self.config.port, reason_code)
            return
        self._connected.set()
        self._last = "connected"

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected.clear()
        self._last = f"disconnected ({reason_code})"

    def _publish(self, body: dict) -> None:
        cfg = self.config
        if not self._connected.wait(cfg.publish_timeout_s):
            raise ActuatorError(f"mqtt broker {cfg.host}:{cfg.port} not connected ({self._last}); "
                                "the door stays locked")
        properties = self._properties_class(self._publish_type)
        properties.MessageExpiryInterval = cfg.message_expiry_s
        payload = json.dumps(body, sort_keys=True, separators=(",", ":"))
        info = self._client.publish(cfg.topic, payload, qos=1, retain=False, properties=properties)
        try:
            info.wait_for_publish(timeout=cfg.publish_timeout_s)
            published = info.is_published()
        except (ValueError, RuntimeError) as exc:
            self._last = f"{body['action']} failed ({exc})"
            raise ActuatorError(f"mqtt publish to {cfg.topic} failed ({exc}); the door stays locked") from None
        if not published:
            self._last = f"{body['action']} not acknowledged"
            raise OutcomeUnknownError(f"mqtt broker did not acknowledge {cfg.topic} within "
                                      f"{cfg.publish_timeout_s:g} s; it may still deliver it (outcome unknown; "
                                      f"the message expires after {cfg.message_expiry_s} s)")
        self._last = f"{body['action']} acknowledged"

    def unlock(self, duration_s: float, decision: Decision) -> None:
        now = self._clock()
        self._publish({"action": "unlock", "duration_s": duration_s, "attempt_id": decision.attempt_id,
                       "event_id": uuid.uuid4().hex, "sent_at_s": now,
                       "expires_at_s": now + self.config.message_expiry_s})

    def lock(self) -> None:
        now = self._clock()
        self._publish({"action": "lock", "event_id": uuid.uuid4().hex, "sent_at_s": now,
                       "expires_at_s": now + self.config.message_expiry_s})

    def health(self) -> ActuatorHealth:
        return ActuatorHealth(self._connected.is_set(),
                              f"mqtt {self.config.host}:{self.config.port} {self.config.topic}: {self._last}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def open_mqtt(config: MqttConfig) -> MqttPublisher:
    return MqttPublisher(config)
