"""kiosk.toml validation: every error is one line naming the file, table and key; secrets stay hidden."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.kiosk.config import load_kiosk_config, parse_kiosk_config

REPO = Path(__file__).resolve().parents[3]


def test_valid_config_loads_with_resolved_paths(make_config, config_dir, secret_bytes):
    config = make_config()
    assert config.kiosk.source == "realsense" and config.kiosk.production is True
    assert config.kiosk.model == config_dir / "models/edge.onnx"
    assert config.policy.k == 3 and config.policy.n == 4
    assert config.api.port == 0 and config.api.admits("127.0.0.1") and not config.api.admits("10.0.0.8")
    assert config.token.secret.reveal() == secret_bytes  # stripped of the trailing newline
    assert config.audit.path == config_dir / "audit.sqlite" and config.audit.store_face_images is False
    assert config.actuator.type == "none"
    assert config.kiosk.capture_process is False  # capture in-process unless the operator asks
    assert config.kiosk.depth_filters == "default"  # the validated depth chain unless the operator asks
    assert config.kiosk.face_first is True  # roi = "on" unless the operator asks for the whole frame


def test_secret_never_appears_in_repr(make_config, secret_bytes):
    config = make_config()
    assert secret_bytes.decode() not in repr(config)
    assert "hidden" in repr(config.token.secret)


@pytest.mark.parametrize(("table", "body", "message"), [
    ("api", 'port = "abc"', 'kiosk.toml: [api] port must be an integer, got "abc"'),
    ("api", "port = 70000", "kiosk.toml: [api] port must be at most 65535"),
    ("api", 'prot = 8080', 'kiosk.toml: [api] unknown key "prot"'),
    ("api", 'host = "localhost"', "kiosk.toml: [api] host must be an IP address"),
    ("api", 'allow = ["127.0.0.1", "not-an-ip"]', 'kiosk.toml: [api] allow entry "not-an-ip"'),
    ("policy", "k = 5\nn = 4", "kiosk.toml: [policy] k (5) must not exceed n (4)"),
    ("policy", "k = 2.5", "kiosk.toml: [policy] k must be an integer, got 2.5"),
    ("policy", 'window_s = "1s"', 'kiosk.toml: [policy] window_s must be a number, got "1s"'),
    ("kiosk", 'model = "m.onnx"', "kiosk.toml: [kiosk] needs source"),
    ("kiosk", 'source = "realsense"\nmodel = "m.onnx"\nproduction = "yes"',
     'kiosk.toml: [kiosk] production must be true or false, got "yes"'),
    ("kiosk", 'source = "realsense"\nmodel = "m.onnx"\ncapture_process = 1',
     "kiosk.toml: [kiosk] capture_process must be true or false, got 1"),
    ("kiosk", 'source = "realsense"\nmodel = "m.onnx"\ndepth_filters = "fast"',
     "kiosk.toml: [kiosk] depth_filters must be one of default, decimate2, raw, got 'fast'"),
    ("kiosk", 'source = "realsense"\nmodel = "m.onnx"\nroi = "face"',
     'kiosk.toml: [kiosk] roi must be one of on, off; got "face"'),
    ("token", 'algorithm = "hmac-sha256"', "kiosk.toml: [token] needs secret_file"),
    ("token", 'secret_file = "token.key"\nalgorithm = "rsa"', "kiosk.toml: [token] algorithm must be one of"),
    ("token", 'secret_env = "EDGEFAS_TEST_UNSET_SECRET"', "kiosk.toml: [token] secret_env names the environment"),
    ("audit", 'path = "a.sqlite"\nretention_days = -1', "kiosk.toml: [audit] retention_days must be 0"),
    ("actuator", 'type = "relay"', "kiosk.toml: [actuator] type must be one of gpio, webhook, mqtt, command, none"),
    ("actuator", 'type = "webhook"', "kiosk.toml: [actuator] needs url"),
    ("actuator", 'type = "webhook"\nurl = "ftp://door"\nsecret_file = "token.key"', "kiosk.toml: [actuator] url must"),
    ("actuator", 'type = "gpio"\npin = 6', "kiosk.toml: [actuator] pin 6 is a power or ground pin"),
    ("actuator", 'type = "gpio"\npin = 7\nbcm = 4', 'kiosk.toml: [actuator] unknown key "bcm"'),
    ("actuator", 'type = "command"\nunlock = "open-door"', "kiosk.toml: [actuator] unlock must be a list of strings"),
    ("actuator", 'type = "mqtt"\nhost = "127.0.0.1"\ntopic = "door/#"', "kiosk.toml: [actuator] topic must be a plain"),
])
def test_errors_name_the_key(make_config, table, body, message):
    os.environ.pop("EDGEFAS_TEST_UNSET_SECRET", None)
    with pytest.raises(ConfigError) as info:
        make_config(**{table: body})
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_unknown_table_is_refused(make_config):
    with pytest.raises(ConfigError, match=r"kiosk.toml: unknown table \[camera\]"):
        make_config(camera='serial = "1"')


def test_missing_table_and_bad_toml(make_config, config_dir):
    with pytest.raises(ConfigError, match=r"missing table \[audit\]"):
        make_config(audit=None)
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_kiosk_config("[api\nport = 1", config_dir / "kiosk.toml")


def test_secret_file_readable_by_others_is_refused(make_config, config_dir):
    os.chmod(config_dir / "token.key", 0o644)
    with pytest.raises(ConfigError, match=r"\[token\] secret_file .* readable by group or others; run: chmod 600"):
        make_config()


def test_short_hmac_secret_is_refused(make_config, config_dir):
    (config_dir / "token.key").write_bytes(b"short")
    with pytest.raises(ConfigError, match=r"kiosk.toml: \[token\] secret: the token secret has 5 bytes"):
        make_config()


def test_secret_from_environment(make_config, monkeypatch, secret_bytes):
    monkeypatch.setenv("EDGEFAS_TEST_TOKEN", secret_bytes.decode())
    config = make_config(token='secret_env = "EDGEFAS_TEST_TOKEN"')
    assert config.token.secret.reveal() == secret_bytes
    assert "$EDGEFAS_TEST_TOKEN" in repr(config.token.secret)


def test_both_secret_sources_are_refused(make_config, monkeypatch):
    monkeypatch.setenv("EDGEFAS_TEST_TOKEN", "x" * 40)
    with pytest.raises(ConfigError, match="set only one of secret_file and secret_env"):
        make_config(token='secret_env = "EDGEFAS_TEST_TOKEN"\nsecret_file = "token.key"')


def test_missing_file_says_where_to_start(tmp_path):
    with pytest.raises(ConfigError, match="deploy/kiosk.example.toml"):
        load_kiosk_config(tmp_path / "absent.toml")


def test_example_config_in_deploy_is_valid(tmp_path, monkeypatch, secret_bytes):
    """The shipped example must load once its secret exists (only the secret is supplied by the test)."""
    example = (REPO / "deploy" / "kiosk.example.toml").read_text()
    monkeypatch.setenv("EDGEFAS_TOKEN_SECRET", secret_bytes.decode())
    monkeypatch.setenv("EDGEFAS_WEBHOOK_SECRET", secret_bytes.decode())
    config = parse_kiosk_config(example, tmp_path / "kiosk.toml")
    assert config.kiosk.production is True and config.api.host == "127.0.0.1"
    assert config.audit.store_face_images is False


def test_ed25519_key_file(make_config, config_dir):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file = config_dir / "token.pem"
    key_file.write_bytes(pem)
    os.chmod(key_file, 0o600)
    config = make_config(token='algorithm = "ed25519"\nsecret_file = "token.pem"')
    assert config.token.key().alg == "EdDSA"
    with pytest.raises(ConfigError, match=r"\[token\] secret: the token key file is not a PEM key"):
        make_config(token='algorithm = "ed25519"\nsecret_file = "token.key"')


def test_model_hash_must_be_a_sha256(make_config):
    from edge.errors import ConfigError

    assert make_config().kiosk.model_sha256 == "ab" * 32
    with pytest.raises(ConfigError, match="model_sha256 must be 64 hexadecimal"):
        make_config(kiosk='source = "realsense"\nmodel = "m.onnx"\nmodel_sha256 = "xyz"')


POLICY = "k = 3\nn = 4\n"  # the base config's K of N


@pytest.mark.parametrize(("table", "body", "message"), [
    ("token", 'secret_file = "token.key"\nttl_s = 3600', "kiosk.toml: [token] ttl_s must be between 1 and 300 s"),
    ("token", 'secret_file = "token.key"\nttl_s = 0.2', "kiosk.toml: [token] ttl_s must be between 1 and 300 s"),
    ("policy", "k = 2\nn = 4", "kiosk.toml: [policy] k (2) must be more than half of n (4)"),
    ("policy", "k = 8\nn = 10\nwindow_s = 0.1",
     "kiosk.toml: [policy] k (8) can never be met: window_s = 0.1 s holds at most 4 frames at 30 fps"),
    ("policy", "k = 8\nn = 10\nspoof_frames_to_reject = 9\nwindow_s = 0.25",
     "kiosk.toml: [policy] spoof_frames_to_reject (9) can never be met"),
    ("policy", POLICY + "max_latency_ms = 10",
     "kiosk.toml: [policy] max_latency_ms (10) is shorter than one frame period at 30 fps (33.3 ms)"),
    ("policy", POLICY + "max_frame_age_ms = 5000", "kiosk.toml: [policy] max_frame_age_ms (5000) exceeds window_s"),
    ("kiosk", 'source = "realsense"\nmodel = "m.onnx"\nunlock_s = 60',
     "kiosk.toml: [kiosk] unlock_s must be at most 30 s"),
    ("audit", 'path = "."', "kiosk.toml: [audit] path "),
    ("api", "burst = 0", "kiosk.toml: [api] burst must be at least 1"),
    ("api", "rate_per_s = 0", "kiosk.toml: [api] rate_per_s must be greater than 0"),
])
def test_out_of_range_values_are_one_line_errors_naming_the_key(make_config, table, body, message):
    with pytest.raises(ConfigError) as info:
        make_config(**{table: body})
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_audit_path_that_is_a_folder_says_what_to_write(make_config, config_dir):
    (config_dir / "logs").mkdir()
    with pytest.raises(ConfigError, match=r"\[audit\] path .*logs is a folder; name the database file, e.g. "):
        make_config(audit='path = "logs"')


def test_a_low_entropy_token_secret_is_refused_in_production(make_config, config_dir):
    (config_dir / "token.key").write_bytes(b"a" * 32)  # long enough for RFC 2104, nothing like random
    with pytest.raises(ConfigError, match=r"\[token\] secret: the token secret .* looks far from random"):
        make_config()


def test_a_low_entropy_token_secret_is_a_recorded_warning_off_production(make_config, config_dir, caplog):
    (config_dir / "token.key").write_bytes(b"password" * 4)
    with caplog.at_level("WARNING", logger="edge.kiosk.config"):
        config = make_config(kiosk='source = "synthetic:live"\nmodel = "m.onnx"\nproduction = false')
    assert len(config.warnings) == 1 and "looks far from random" in config.warnings[0]
    assert any("looks far from random" in r.getMessage() for r in caplog.records)


def test_an_open_bind_is_a_warning_in_the_log_and_in_the_start_audit_row(make_config, caplog):
    from edge.kiosk.audit import AuditLog
    from edge.kiosk.service import PipelineHealth, build_kiosk_service

    with caplog.at_level("WARNING", logger="edge.kiosk.config"):
        config = make_config(api='host = "0.0.0.0"\nport = 0\nallow = ["0.0.0.0/0"]')
    assert len(config.warnings) == 1 and "admits every address (0.0.0.0/0) on 0.0.0.0" in config.warnings[0]
    assert [r.levelname for r in caplog.records if "admits every address" in r.getMessage()] == ["WARNING"]
    assert make_config().warnings == ()  # the default, loopback only, is quiet
    with build_kiosk_service(config, lambda: PipelineHealth(True, "camera", "runner", "idle")):
        pass
    log = AuditLog(config.audit.path)
    start = [e for e in log.events(10) if e.action == "start"][0]
    assert "warnings: " in start.detail and "admits every address" in start.detail
    log.close()


def test_roi_off_selects_the_whole_frame_path(make_config):
    config = make_config(kiosk='source = "realsense"\nmodel = "models/edge.onnx"\nroi = "off"')
    assert config.kiosk.face_first is False
