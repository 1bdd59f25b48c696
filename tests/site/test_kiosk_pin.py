"""``edgefas pin``: kiosk.toml's model and model_sha256 lines change, and nothing else; refusals are one line."""

from __future__ import annotations

import shutil
import stat
import tomllib

import pytest
from typer.testing import CliRunner

from edge.cli.app import app
from edge.digest import file_sha256
from engines.bundled import default_model_path
from mean_score_model import write_mean_score_model
from site_cli import one_line_error

KIOSK = """# door 3, lobby: owned by facilities (call ext. 4411 before changing)
[kiosk]
source = "realsense"   # the D435 above the door
model = 'models/old.onnx'  # shipped 2026-11
model_sha256 = "abababababababababababababababababababababababababababababababab"  # pin
production = true

[policy]
k = 3
n = 4
# model = "not this one: another table"

[token]
algorithm = "hmac-sha256"
secret_file = "token.key"
"""


def pin(config, model):
    return CliRunner().invoke(app, ["pin", "--config", str(config), "--model", str(model)])




@pytest.fixture
def model(tmp_path):
    """A model with a threshold (the bundled one, copied under the config's folder)."""
    (tmp_path / "models").mkdir()
    return shutil.copy(default_model_path(), tmp_path / "models" / "site.onnx")


def test_only_the_two_lines_change_and_comments_stay(tmp_path, model):
    config = tmp_path / "kiosk.toml"
    config.write_text(KIOSK)
    config.chmod(0o640)
    result = pin(config, model)
    assert result.exit_code == 0, result.output
    after = config.read_text()
    digest = file_sha256(model)
    changed = [(a, b) for a, b in zip(KIOSK.splitlines(), after.splitlines(), strict=True) if a != b]
    assert changed == [
        ("model = 'models/old.onnx'  # shipped 2026-11", 'model = "models/site.onnx"  # shipped 2026-11'),
        ('model_sha256 = "' + "ab" * 32 + '"  # pin', f'model_sha256 = "{digest}"  # pin'),
    ]
    parsed = tomllib.loads(after)
    assert parsed["kiosk"]["model"] == "models/site.onnx" and parsed["kiosk"]["model_sha256"] == digest
    assert stat.S_IMODE(config.stat().st_mode) == 0o640  # a config holding a secret's path keeps its mode
    assert not list(tmp_path.glob("*.partial"))
    assert "was models/old.onnx" in result.output


def test_a_missing_pin_is_added_under_the_model_line(tmp_path, model):
    config = tmp_path / "kiosk.toml"
    config.write_text(KIOSK.replace('model_sha256 = "' + "ab" * 32 + '"  # pin\n', ""))
    assert pin(config, model).exit_code == 0
    lines = config.read_text().splitlines()
    at = lines.index('model = "models/site.onnx"  # shipped 2026-11')
    assert lines[at + 1] == f'model_sha256 = "{file_sha256(model)}"'


def test_a_model_outside_the_config_folder_is_written_absolute(tmp_path, model):
    (tmp_path / "etc").mkdir()
    config = tmp_path / "etc" / "kiosk.toml"
    config.write_text(KIOSK)
    assert pin(config, model).exit_code == 0
    assert tomllib.loads(config.read_text())["kiosk"]["model"] == str(model.resolve())


def test_a_model_without_a_threshold_is_refused_and_the_config_kept(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text(KIOSK)
    bare = write_mean_score_model(tmp_path / "bare.onnx")
    message = one_line_error(pin(config, bare))
    assert "carries no decision threshold" in message and "edgefas calibrate threshold" in message
    assert config.read_text() == KIOSK


@pytest.mark.parametrize("text,needle", [
    ("[policy]\nk = 3\n", "no [kiosk] table"),
    ("[kiosk]\nsource = \"realsense\"\n", "[kiosk] has no model"),
    ("[kiosk\nmodel = 1\n", "not valid TOML"),
])
def test_a_config_that_cannot_be_pinned_is_one_line(tmp_path, model, text, needle):
    config = tmp_path / "kiosk.toml"
    config.write_text(text)
    assert needle in one_line_error(pin(config, model))
    assert config.read_text() == text


def test_a_missing_config_is_one_line(tmp_path, model):
    assert "no such file" in one_line_error(pin(tmp_path / "nope.toml", model))
