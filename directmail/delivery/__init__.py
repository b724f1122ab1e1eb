"""Destinations: put a staged file under its final name atomically (temporary name, then rename)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from directmail.config import LocalRouting, Routing
from directmail.errors import DeliveryError


class Destination(Protocol):
    def describe(self) -> str:
        """Where files go, for reports; never includes a secret."""
        ...

    def put(self, local_path: Path, relative_name: str) -> None:
        """Deliver one file under `relative_name`; on failure nothing is left under that name."""
        ...

    def close(self) -> None: ...


def open_destination(name: str, routing: Routing, project_dir: Path) -> Destination:
    if isinstance(routing, LocalRouting):
        from directmail.delivery.local import LocalDestination

        return LocalDestination(project_dir, routing)
    raise DeliveryError(f"routing '{name}': delivery of type {routing.type} is not available in this version")
