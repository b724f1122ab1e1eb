"""Secrets are referenced, never written: `${ENV_VAR}` in direct_mail.yml, resolved only when used."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class SecretRef:
    """A reference to a secret held in an environment variable; its repr shows the name only."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def reveal(self) -> str:
        value = os.environ.get(self.name)
        if value is None:
            raise LookupError(f"environment variable {self.name} is not set")
        return value

    def is_set(self) -> bool:
        return self.name in os.environ

    def __repr__(self) -> str:
        return f"SecretRef(${{{self.name}}})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


def _parse(value: Any) -> SecretRef:
    if isinstance(value, SecretRef):
        return value
    if isinstance(value, str) and (match := _REFERENCE.match(value.strip())):
        return SecretRef(match.group(1))
    raise ValueError("a secret must be written as ${ENV_VAR}, never inline")


Secret = Annotated[SecretRef, BeforeValidator(_parse), PlainSerializer(repr, return_type=str)]
