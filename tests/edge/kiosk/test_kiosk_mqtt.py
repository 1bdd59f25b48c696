"""The MQTT actuator against a real mosquitto broker on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from edge.kiosk.actuators.actuator import ActuatorError
from edge.kiosk.actuators.mqtt_message import MqttConfig, MqttPublisher
from edge.policy import Decision

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto broker binary not installed "
                                                          "(Debian package 'mosquitto')")
mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (pip install 'edgefas[kiosk]')")

GRANT = Decision(state="live", code="live", reason="live", t_ms=0.0, score=0.1, threshold=0.5, attempt_id=9)
TOPIC = "site/door1/command"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker(tmp_path):
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"mosquitto exited: {proc.stderr.read().decode()[-300:]}")
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=5)


def subscriber(port: int, received: list, subscribed: threading.Event):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    from paho.mqtt.subscribeoptions import SubscribeOptions

    # retainAsPublished: the broker passes the publisher's retain flag through (MQTT 5 §3.8.3.1),
    # so message.retain below is what our publisher sent, not what the broker rewrote.
    options = SubscribeOptions(qos=1, retainAsPublished=True)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(TOPIC, options=options)
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    client.on_message = lambda c, u, msg: received.append(msg)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert subscribed.wait(5), "subscriber did not subscribe"
    return client


def wait_for(condition, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_unlock_arrives_not_retained_with_message_expiry(broker):
    received, subscribed = [], threading.Event()
    listener = subscriber(broker, received, subscribed)
    publisher = MqttPublisher(MqttConfig(host="127.0.0.1", port=broker, topic=TOPIC, client_id="edgefas-test",
                                         message_expiry_s=7))
    try:
        publisher.unlock(3.0, GRANT)
        assert wait_for(lambda: received), "the unlock message never arrived"
        message = received[0]
        assert message.retain is False and message.qos == 1
        assert 0 < message.properties.MessageExpiryInterval <= 7
        import json

        body = json.loads(message.payload)
        assert body["action"] == "unlock" and body["attempt_id"] == 9
        assert body["expires_at_s"] - body["sent_at_s"] == pytest.approx(7)
        assert "acknowledged" in publisher.health()

        late, late_subscribed = [], threading.Event()  # a controller subscribing later must get nothing
        latecomer = subscriber(broker, late, late_subscribed)
        time.sleep(0.3)
        assert late == []
        latecomer.loop_stop()
        latecomer.disconnect()
    finally:
        publisher.close()
        listener.loop_stop()
        listener.disconnect()


def test_no_broker_means_no_unlock():
    publisher = MqttPublisher(MqttConfig(host="127.0.0.1", port=free_port(), topic=TOPIC, publish_timeout_s=0.5))
    try:
        with pytest.raises(ActuatorError, match="not connected"):
            publisher.unlock(3.0, GRANT)
    finally:
        publisher.close()
