"""Routing checks that need no network: secrets set, host key pinned, encryption key usable.

Run by `directmail validate` and again at the start of every run, so a wrong routing is refused before
dbt builds anything. `validate --check-connections` goes further and talks to each server (probe()).
"""

from __future__ import annotations

from pathlib import Path

from directmail.config import CONFIG_FILE, Routing, SftpRouting, resolve_directory
from directmail.encryption import KeyProblem, load_public_key
from directmail.errors import DeliveryError, Finding, Level
from directmail.secrets import ENV


def routing_findings(name: str, routing: Routing, project_dir: Path, level: Level = "error") -> list[Finding]:
    findings: list[Finding] = []

    def finding(key: str, reason: str) -> None:
        findings.append(Finding(CONFIG_FILE, f"routing.{name}.{key}", reason, level))

    for key, secret in routing.secrets():
        if not secret.is_set():
            finding(
                key,
                f"{secret.source} is not set"
                if secret.scheme == ENV
                else f"{secret.reference} cannot be resolved here",
            )
    if isinstance(routing, SftpRouting):
        from directmail.delivery.sftp import pinned_host_keys

        try:
            pinned_host_keys(resolve_directory(project_dir, routing.known_hosts), routing.host, routing.port)
        except DeliveryError as exc:
            finding("known_hosts", str(exc))
        if (
            routing.private_key is not None
            and routing.private_key.scheme == ENV
            and routing.private_key.is_set()
        ):
            value = routing.private_key.reveal()
            if "-----BEGIN" not in value and not Path(value).expanduser().is_file():
                finding("private_key", f"{routing.private_key.source} names a key file that does not exist")
    if routing.encryption_key is not None:
        try:
            load_public_key(resolve_directory(project_dir, routing.encryption_key))
        except KeyProblem as exc:
            finding("encryption_key", str(exc))
    return findings
