"""The MQTT actuator against a real mosquitto broker on a free loopback port (stopped and restarted
on the same port to see ``/healthz`` follow the connection)."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from edge.kiosk.actuators.actuator import ActuatorError
from edge.kiosk.actuators.mqtt_message import MqttConfig, MqttPublisher
from edge.kiosk.audit import AuditLog
from edge.kiosk.service import KioskService, PipelineHealth
from edge.policy import Decision
from free_port import free_port

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto broker binary not installed "
                                                          "(Debian package 'mosquitto')")
mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (pip install 'edgefas[kiosk]')")

GRANT = Decision(state="live", code="live", reason="live", t_ms=0.0, score=0.1, threshold=0.5, attempt_id=9)
TOPIC = "site/door1/command"


class Broker:
    """A mosquitto process on a fixed free port that can be stopped and started again."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail(f"mosquitto exited: {self.proc.stderr.read().decode()[-300:]}")
                if time.monotonic() > deadline:
                    pytest.fail("mosquitto did not listen within 30 s")
                time.sleep(0.05)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # never leave a broker behind, whatever the test did
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def broker(tmp_path):
    running = Broker(tmp_path).start()
    yield running.port
    running.stop()


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
        time.sleep(0.05)
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

        body = json.loads(message.payload)
        assert body["action"] == "unlock" and body["attempt_id"] == 9
        assert body["expires_at_s"] - body["sent_at_s"] == pytest.approx(7)
        assert "acknowledged" in publisher.health().line and publisher.health().ready

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


def healthz(service) -> tuple[int, dict]:
    host, port = service.api.address
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_healthz_is_503_while_the_broker_is_down(tmp_path, make_config):
    """A door whose broker is gone cannot open: /healthz must say so, and recover with the broker."""
    broker = Broker(tmp_path).start()
    publisher = MqttPublisher(MqttConfig(host="127.0.0.1", port=broker.port, topic=TOPIC, client_id="edgefas-health"))
    config = make_config(kiosk='source = "realsense"\nmodel = "m.onnx"',
                         api='port = 0\nallow = ["127.0.0.1"]\nrate_per_s = 1000.0\nburst = 1000')
    pipeline = PipelineHealth(ok=True, camera="realsense 0001 streaming", runner="onnxruntime cpu", policy="idle")
    service = KioskService(config, actuator=publisher, audit=AuditLog(config.audit.path), health=lambda: pipeline)
    try:
        with service:
            service.begin()  # the pipeline runs: only the actuator can be down
            assert wait_for(lambda: healthz(service)[0] == 200, 60), healthz(service)
            broker.stop()
            assert wait_for(lambda: healthz(service)[0] == 503, 60), healthz(service)
            status, body = healthz(service)
            assert body["ok"] is False and body["down"] == ["actuator"] and "disconnected" in body["actuator"]
            broker.start()  # paho's network thread reconnects by itself (1 s, then backing off to 30 s)
            assert wait_for(lambda: healthz(service)[0] == 200, 90), healthz(service)
            assert healthz(service)[1]["down"] == []
    finally:
        broker.stop()
