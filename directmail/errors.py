"""Errors whose text is safe to show an operator: they name a place and a reason, never a secret value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["error", "warning"]  # a finding's: an error refuses, a warning only tells


@dataclass(frozen=True)
class Finding:
    """One problem found in a project file, located precisely enough to fix without searching."""

    file: str
    key: str
    reason: str
    level: Level = "error"

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{self.level}: {where}: {self.reason}"


class DirectMailError(Exception):
    """Base class: the message is meant for the operator, as is."""


class ConfigError(DirectMailError):
    """One or more configuration errors, found before any work started."""

    def __init__(self, findings: list[Finding]):
        self.findings = [f for f in findings if f.level == "error"]
        super().__init__("\n".join(str(f) for f in self.findings))


class RowsRefused(ConfigError):
    """A finding about the built rows (an identity empty or on several rows, an addresses source with
    several rows for a profile): the data is wrong, not the YAML, so unlike a configuration error it is
    recorded as a failed run."""


class BuildError(DirectMailError):
    """dbt could not build (or test) the campaign or what it depends on."""


class ExtractInvalid(DirectMailError):
    """The extract failed validation; nothing was delivered."""


class StagingFailed(DirectMailError):
    """The extract could not be staged (a full disk, or another OS error in the staging folder); nothing
    was delivered and nothing partial was kept."""


class DeliveryError(DirectMailError):
    """A file could not be delivered; nothing was left under its final name.

    `transient` marks failures worth another try later (the server was unreachable or dropped the
    connection after our own retries); a refused password or host key is not.
    """

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class AlreadyDelivered(DirectMailError):
    """The run id has already been delivered; re-running needs --force."""


class Settled(AlreadyDelivered):
    """An earlier attempt of the run id had delivered without recording it: now recorded, nothing sent."""


class DropInTheWay(DirectMailError):
    """Invariant I1: a delivered drop of another run id holds names this run would write; nothing left."""


class FutureRunTime(DirectMailError):
    """Invariant I2: a run time more than a day after now, without --allow-future."""
