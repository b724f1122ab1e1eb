"""A campaign's `file_name`: a safe relative path, optionally a template with placeholders.

Placeholders: {campaign}, {configuration}, {run_date} (YYYYMMDD, UTC) and {run_time} (YYYYMMDD_HHMMSS,
UTC). The name is expanded first; contract 3's naming rules (timestamp, part suffix, .gz, .gpg,
sidecars, manifest) then apply to the expanded name.
"""

from __future__ import annotations

import re
import string
import unicodedata
from datetime import UTC, datetime
from pathlib import PurePosixPath

PLACEHOLDERS = ("campaign", "configuration", "run_date", "run_time")
_LISTED = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
# Control (Cc), invisible format (Cf: zero-width space, bidi overrides, BOM), line and paragraph separators
# (Zl, Zp), and lone surrogates (Cs, which UTF-8 cannot hold): a name a person cannot read as it is.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def _refused_characters(value: str) -> list[str]:
    return list(dict.fromkeys(c for c in value if unicodedata.category(c) in _REFUSED_CATEGORIES))


def path_problem(value: str) -> str | None:
    """Why `value` is not a safe relative file path, or None."""
    if not value or value.strip() != value:
        return "file_name must be a non-empty relative path without surrounding spaces"
    if "\\" in value:
        return "file_name must use / between folders, not \\"
    if refused := _refused_characters(value):
        codes = ", ".join(f"U+{ord(c):04X}" for c in refused)
        return (
            f"file_name holds {codes}: no control, invisible format, line or paragraph separator character "
            "(Unicode categories Cc, Cf, Zl, Zp)"
        )
    path = PurePosixPath(value)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", value):
        return "file_name must be relative, not absolute"
    if ".." in path.parts or "." in value.split("/") or "" in value.split("/"):
        return "file_name must not contain '..', '.' or empty folders"
    if not path.stem or path.name.startswith("."):
        return "file_name must end with a file name (hidden names are reserved)"
    return None


def _pieces(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder or None) pairs; ValueError with the reason if the template is invalid."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        raise ValueError(
            f"file_name has an unbalanced brace; literal braces are not supported, placeholders are {_LISTED}"
        ) from None
    pieces: list[tuple[str, str | None]] = []
    rebuilt = ""
    for literal, field, spec, conversion in parsed:
        if "{" in literal or "}" in literal:
            raise ValueError(f"file_name: literal braces are not supported; placeholders are {_LISTED}")
        rebuilt += literal
        if field is None:
            pieces.append((literal, None))
            continue
        if field not in PLACEHOLDERS:
            raise ValueError(f"file_name placeholder '{{{field}}}' is unknown; use {_LISTED}")
        rebuilt += "{" + field + "}"
        if spec or conversion:
            raise ValueError(
                f"file_name placeholder '{{{field}}}' takes no format spec or conversion; write {{{field}}}"
            )
        pieces.append((literal, field))
    if rebuilt != template:  # e.g. '{campaign:}' with an empty spec
        raise ValueError(f"file_name placeholders take no format spec or conversion; write them as {_LISTED}")
    return pieces


def template_problem(template: str) -> str | None:
    """Why `template` is not a valid file-name template (or a safe path once expanded), or None."""
    try:
        expand_file_name(template, "campaign", "configuration", datetime(2000, 1, 1, tzinfo=UTC))
    except ValueError as error:
        return str(error)
    return None


def expand_file_name(template: str, campaign: str, configuration: str, run_time: datetime) -> str:
    """The template with its placeholders filled in; ValueError if invalid or the result is unsafe."""
    moment = run_time.astimezone(UTC) if run_time.tzinfo is not None else run_time
    values = {
        "campaign": campaign,
        "configuration": configuration,
        "run_date": moment.strftime("%Y%m%d"),
        "run_time": moment.strftime("%Y%m%d_%H%M%S"),
    }
    name = "".join(literal + (values[field] if field else "") for literal, field in _pieces(template))
    if name != template and (problem := path_problem(name)):
        raise ValueError(f"file_name expands to '{name}': {problem}")
    return name
