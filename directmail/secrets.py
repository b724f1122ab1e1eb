"""Secrets are referenced, never written: resolved only when used, and scrubbed from any text we show.

Two kinds of reference, both written in direct_mail.yml:
- `${ENV_VAR}`: an environment variable;
- `${prefect:block-name}`: a Prefect Secret block. The library never imports Prefect: the Prefect layer
  (flows/, or the CLI when asked) registers a resolver for the `prefect` scheme.

Every value revealed is remembered (in this process only) so that `scrub()` can remove it from exception
text, run messages and logs, whatever library produced that text.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_REFERENCE = re.compile(
    r"^\$\{(?:(?P<scheme>[a-z]+):(?P<block>[a-z0-9][a-z0-9-]*)|(?P<env>[A-Za-z_][A-Za-z0-9_]*))\}$"
)
ENV = "env"
PREFECT = "prefect"
MASK = "***"

Resolver = Callable[[str], str]
_resolvers: dict[str, Resolver] = {}
_revealed: set[str] = set()
_lock = threading.Lock()


def register_resolver(scheme: str, resolver: Resolver) -> None:
    """Let a layer above the library resolve `${scheme:name}` references (e.g. Prefect Secret blocks)."""
    _resolvers[scheme] = resolver


def has_resolver(scheme: str) -> bool:
    return scheme == ENV or scheme in _resolvers


def remember(value: str) -> str:
    """Mark a value (or a secret part of one) as secret, so scrub() hides it from now on."""
    if value and len(value) >= 4:  # shorter strings would mask ordinary words
        with _lock:
            _revealed.add(value)
    return value


def scrub(text: str) -> str:
    """Replace every secret value revealed so far in this process by ***."""
    with _lock:
        values = sorted(_revealed, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


class SecretRef:
    """A reference to a secret; its repr shows where it comes from, never its value."""

    __slots__ = ("name", "scheme")

    def __init__(self, name: str, scheme: str = ENV):
        self.name = name
        self.scheme = scheme

    @property
    def reference(self) -> str:
        return f"${{{self.name}}}" if self.scheme == ENV else f"${{{self.scheme}:{self.name}}}"

    @property
    def source(self) -> str:
        """For messages: 'environment variable X' or 'prefect secret block x'."""
        return (
            f"environment variable {self.name}" if self.scheme == ENV else f"{self.scheme} secret {self.name}"
        )

    def reveal(self) -> str:
        if self.scheme == ENV:
            value = os.environ.get(self.name)
            if value is None:
                raise LookupError(f"environment variable {self.name} is not set")
        else:
            resolver = _resolvers.get(self.scheme)
            if resolver is None:
                raise LookupError(f"{self.reference} needs the Prefect integration (flows/secret_blocks.py)")
            try:
                value = resolver(self.name)
            except Exception as exc:
                raise LookupError(f"{self.source} could not be read: {type(exc).__name__}") from None
        return remember(value)

    def is_set(self) -> bool:
        """Cheap check for validate: env vars are looked up; other schemes are checked when used."""
        return self.name in os.environ if self.scheme == ENV else has_resolver(self.scheme)

    def __repr__(self) -> str:
        return f"SecretRef({self.reference})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and (other.name, other.scheme) == (self.name, self.scheme)

    def __hash__(self) -> int:
        return hash((self.name, self.scheme))


def _parse(value: Any) -> SecretRef:
    if isinstance(value, SecretRef):
        return value
    if isinstance(value, str) and (match := _REFERENCE.match(value.strip())):
        if match.group("env"):
            return SecretRef(match.group("env"))
        if match.group("scheme") != PREFECT:
            raise ValueError(
                f"unknown secret scheme '{match.group('scheme')}' (use ${{ENV_VAR}} or ${{prefect:block}})"
            )
        return SecretRef(match.group("block"), PREFECT)
    raise ValueError("a secret must be written as ${ENV_VAR} or ${prefect:block-name}, never inline")


# How an editor's JSON Schema sees a secret (schemas/): a reference, never a value.
SECRET_SCHEMA = {
    "type": "string",
    "pattern": r"^\s*\$\{(prefect:[a-z0-9][a-z0-9-]*|[A-Za-z_][A-Za-z0-9_]*)\}\s*$",
    "description": "A secret reference: ${ENV_VAR} or ${prefect:block-name}, never the value itself.",
}
Secret = Annotated[
    SecretRef,
    BeforeValidator(_parse),
    PlainSerializer(repr, return_type=str),
    WithJsonSchema(SECRET_SCHEMA),
]
