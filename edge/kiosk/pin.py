"""Pinning a model in kiosk.toml: rewrite ``[kiosk] model`` and ``model_sha256``, and nothing else.

The kiosk refuses to start on a model file whose sha256 is not the pinned one (DESIGN §7: a door
must not silently decide with a replaced model), so shipping a new model to a door is two lines of
its kiosk.toml. This module edits exactly those two lines in place, keeping every other line,
comment and the file's permissions as they were: a kiosk.toml holds an operator's settings and
comments, which a TOML round trip (parse, dump) would lose. The result is read back with the TOML
parser and must name the new model and hash, or the file is left untouched.

An ONNX model is pinned only when it carries a decision threshold within its score range
(``edgefas calibrate threshold``): a door never runs a model that has not been put at an operating point.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edge.digest import file_sha256
from edge.errors import ConfigError
from edge.kiosk.config import read_kiosk_toml

# one key line of a table: indentation, key, '=', a basic or literal string, then anything (a comment)
_KEY_LINE = r'^(?P<lead>\s*{key}\s*=\s*)(?P<value>"(?:[^"\\]|\\.)*"|\'[^\']*\')(?P<rest>.*)$'
_TABLE_HEADER = re.compile(r"^\s*\[")


@dataclass(frozen=True)
class PinResult:
    config: Path
    model: Path
    model_text: str  # the path as written into kiosk.toml
    sha256: str
    previous_model: str | None
    previous_sha256: str | None

    def to_json(self) -> dict[str, object]:
        return {"config": str(self.config), "model": str(self.model), "model_text": self.model_text,
                "sha256": self.sha256, "previous_model": self.previous_model, "previous_sha256": self.previous_sha256}


def check_pinnable(model: Path) -> None:
    """The model exists and, when ONNX, carries a threshold in its score range (one line otherwise)."""
    if not model.is_file():
        raise ConfigError(f"--model '{model}' is not a file; give the model the kiosk should run")
    if model.suffix.lower() == ".onnx":
        from engines.metadata import check_operating_point, read_metadata

        metadata = read_metadata(model)
        if metadata.threshold is None:
            raise ConfigError(f"--model '{model}' carries no decision threshold; put it at an operating point first: "
                              f"edgefas calibrate threshold --model {model} --dataset SPEC --target bpcer=1%")
        check_operating_point(metadata, f"--model '{model}'")


def model_text_for(model: Path, config: Path) -> str:
    """How kiosk.toml names the model: relative to the config's folder (kiosk.toml reads relative paths
    from there) when the model lies under it, else absolute."""
    resolved, base = model.resolve(), config.resolve().parent
    try:
        return str(resolved.relative_to(base))
    except ValueError:
        return str(resolved)


def _kiosk_table(lines: list[str], config: Path) -> tuple[int, int]:
    """First and one-past-last line index of the ``[kiosk]`` table's body."""
    start = next((i + 1 for i, line in enumerate(lines) if line.strip() == "[kiosk]"), None)
    if start is None:
        raise ConfigError(f"{config}: no [kiosk] table; start from deploy/kiosk.example.toml")
    end = next((i for i in range(start, len(lines)) if _TABLE_HEADER.match(lines[i])), len(lines))
    return start, end


def pin_model(config: Path, model: Path) -> PinResult:
    """Point ``config``'s ``[kiosk] model`` at ``model`` and pin its sha256; every other line stays."""
    config, model = Path(config), Path(model)
    text = read_kiosk_toml(config)
    try:
        before = tomllib.loads(text).get("kiosk", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config}: not valid TOML ({exc}); fix it before pinning") from None
    check_pinnable(model)
    digest = file_sha256(model)
    model_text = model_text_for(model, config)
    lines = text.splitlines(keepends=True)
    start, end = _kiosk_table(lines, config)
    patterns = {key: re.compile(_KEY_LINE.format(key=key)) for key in ("model", "model_sha256")}
    values = {"model": json.dumps(model_text), "model_sha256": json.dumps(digest)}
    found: dict[str, int] = {}
    for i in range(start, end):
        for key, pattern in patterns.items():
            match = pattern.match(lines[i].rstrip("\r\n"))
            if match:
                newline = lines[i][len(lines[i].rstrip("\r\n")):]
                lines[i] = match["lead"] + values[key] + match["rest"] + newline
                found[key] = i
    if "model" not in found:
        raise ConfigError(f"{config}: [kiosk] has no model = \"...\" line to rewrite; add one "
                          f"(deploy/kiosk.example.toml)")
    if "model_sha256" not in found:  # the pin goes right under the model it pins
        at = found["model"]
        newline = lines[at][len(lines[at].rstrip("\r\n")):] or "\n"
        lines.insert(at + 1, f"model_sha256 = {values['model_sha256']}{newline}")
    updated = "".join(lines)
    after = tomllib.loads(updated).get("kiosk", {})
    if after.get("model") != model_text or after.get("model_sha256") != digest:
        raise ConfigError(f"{config}: the model lines could not be rewritten in place (a multi-line or dotted "
                          f"key?); set [kiosk] model and model_sha256 = \"{digest}\" by hand")
    tmp = config.with_name(config.name + ".partial")
    tmp.write_text(updated, encoding="utf-8")
    os.chmod(tmp, config.stat().st_mode & 0o7777)
    tmp.replace(config)
    return PinResult(config, model, model_text, digest, before.get("model"), before.get("model_sha256"))
