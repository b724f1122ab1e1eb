"""Destinations: put a staged file under its final name atomically, or leave nothing under that name.

Local folders and SFTP write a temporary name and rename it; S3 and Azure Blob commit an object only when
its upload is complete, so they write the final name directly.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from directmail.config import (
    AzureRouting,
    LocalRouting,
    Routing,
    S3Routing,
    SftpRouting,
    resolve_directory,
)
from directmail.errors import DeliveryError
from directmail.secrets import scrub

PROBE_PREFIX = ".directmail-probe-"


class Destination(Protocol):
    def describe(self) -> str:
        """Where files go, for reports; never includes a secret."""
        ...

    # Whether `put` writes a temporary name (TEMPORARY_NAME) first and renames it over the final one:
    # then the temporary is there exactly while the file is fully sent but not yet under its name.
    stages_under_temporary_name: bool

    def put(
        self, local_path: Path, relative_name: str, before_commit: Callable[[], None] | None = None
    ) -> None:
        """Deliver one file under `relative_name`; on failure nothing is left under that name.
        `before_commit` is called once the file is wholly sent, just before it appears under its name
        (where the destination has no temporary name: just before the upload)."""
        ...

    def remove(self, relative_name: str) -> None:
        """Delete a delivered file (a replaced drop's stale parts, the probe); absent files are fine."""
        ...

    def read(self, relative_name: str) -> bytes | None:
        """A small delivered file's bytes (a manifest), or None when there is none under that name."""
        ...

    def size(self, relative_name: str) -> int | None:
        """The size of a delivered file, or None when there is none under that name."""
        ...

    def list(self, relative_folder: str) -> list[str]:
        """The files directly in a folder (e.g. `returns`), as relative names (`returns/a.csv`), sorted;
        not its subfolders, nor hidden names (an upload in progress); empty when there is no folder."""
        ...

    def close(self) -> None: ...


def destination_key(routing: Routing, project_dir: Path) -> str:
    """Where a routing's files land, as one comparable string: two routings with the same key share a
    destination (so their campaigns' names must never collide, and a crashed drop of one is settled
    before the other extracts)."""
    if isinstance(routing, LocalRouting):
        return f"local:{resolve_directory(project_dir, routing.directory).resolve()}"
    if isinstance(routing, SftpRouting):
        return f"sftp:{routing.host.lower()}:{routing.port}:{routing.directory.rstrip('/') or '/'}"
    if isinstance(routing, S3Routing):
        return f"s3:{routing.endpoint_url or ''}:{routing.bucket}/{routing.folder}"
    if isinstance(routing, AzureRouting):
        return f"azure:{routing.container}/{routing.folder}"
    return f"{routing.type}:{id(routing)}"


def describe_routing(routing: Routing, project_dir: Path) -> str:
    """Where a routing's files go, as every report shows it (the destination's own `describe`, without
    connecting); never a secret: of an Azure connection string, only its account name."""
    if isinstance(routing, LocalRouting):
        return f"local folder {resolve_directory(project_dir, routing.directory)}"
    if isinstance(routing, SftpRouting):
        folder = routing.directory if routing.directory.startswith("/") else "/" + routing.directory
        return f"sftp://{routing.username}@{routing.host}:{routing.port}{folder}"
    if isinstance(routing, S3Routing):
        where = f"s3://{routing.bucket}/{routing.folder}"
        return f"{where} ({routing.endpoint_url})" if routing.endpoint_url else where
    if isinstance(routing, AzureRouting):
        try:
            account = re.search(r"(?:^|;)\s*AccountName=([^;]+)", routing.connection_string.reveal())
        except Exception:  # an unset secret is reported by the routing checks, not here
            account = None
        return f"azure://{account.group(1) + '/' if account else ''}{routing.container}/{routing.folder}"
    return routing.type


def open_destination(name: str, routing: Routing, project_dir: Path) -> Destination:
    try:
        if isinstance(routing, LocalRouting):
            from directmail.delivery.local import LocalDestination

            return LocalDestination(project_dir, routing)
        if isinstance(routing, SftpRouting):
            from directmail.delivery.sftp import SftpDestination

            return SftpDestination(name, routing, project_dir)
        if isinstance(routing, S3Routing):
            from directmail.delivery.s3 import S3Destination

            return S3Destination(name, routing)
        if isinstance(routing, AzureRouting):
            from directmail.delivery.azure import AzureDestination

            return AzureDestination(name, routing)
    except LookupError as exc:  # a secret that is not set
        raise DeliveryError(f"routing '{name}': {exc}") from None
    raise DeliveryError(f"routing '{name}': unknown routing type {routing.type}")


def probe(name: str, routing: Routing, project_dir: Path) -> str:
    """Connect, authenticate, write a small file and remove it; return where, or raise DeliveryError."""
    probe_name = f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}.txt"
    destination = open_destination(name, routing, project_dir)
    try:
        with tempfile.TemporaryDirectory(prefix="dm-probe-") as folder:
            local = Path(folder) / probe_name
            local.write_text("directmail connection check; safe to delete\n")
            destination.put(local, probe_name)
            destination.remove(probe_name)
        return destination.describe()
    except DeliveryError:
        raise
    except Exception as exc:
        raise DeliveryError(scrub(f"routing '{name}': {type(exc).__name__}: {exc}")) from None
    finally:
        destination.close()
