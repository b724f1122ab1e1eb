"""Read a project YAML file, turning syntax errors into findings that name the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from directmail.errors import ConfigError, Finding


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


def findings_from_validation_error(exc, file: str, prefix: str = "") -> list[Finding]:
    """pydantic errors → findings. Only the error's own text is used, never the offending input."""
    findings = []
    for error in exc.errors(include_input=False, include_url=False):
        key = ".".join(str(part) for part in error["loc"] if part not in _ROUTING_TAGS)
        reason = _reason(error)
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
