"""Read a project YAML file, turning syntax errors into findings that name the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from directmail.errors import ConfigError, Finding
from directmail.suggestions import did_you_mean, expected_values, keys_at


def load_yaml_mapping(path: Path, display_name: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError([Finding(display_name, "", "file not found")])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([Finding(display_name, where, f"invalid YAML: {problem}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([Finding(display_name, "", "the file must hold a mapping at its top level")])
    return data


def findings_from_validation_error(
    exc, file: str, prefix: str = "", model: type[BaseModel] | None = None
) -> list[Finding]:
    """pydantic errors → findings. The offending input is never shown; with the model, a mistyped key or
    value gets the closest one it accepts as a suggestion."""
    findings = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"] if part not in _ROUTING_TAGS)
        reason = _reason(error) + _suggestion(error, model)
        findings.append(Finding(file, ".".join(p for p in (prefix, key) if p), reason))
    return findings


# pydantic puts the discriminated union's tag into the error location; users never wrote it as a key.
_ROUTING_TAGS = {"local", "sftp", "s3", "azure"}


def _reason(error: dict) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _suggestion(error: dict, model: type[BaseModel] | None) -> str:
    """Only for an unknown key (the key is the user's own word) and a value outside a fixed set of
    choices (never a secret): the input is compared, not shown."""
    kind, typed = error["type"], error.get("input")
    if kind == "extra_forbidden" and model is not None and error["loc"]:
        return did_you_mean(str(error["loc"][-1]), keys_at(model, tuple(error["loc"][:-1])))
    if kind == "literal_error" and isinstance(typed, str):
        return did_you_mean(typed, expected_values(error.get("ctx")))
    return ""
