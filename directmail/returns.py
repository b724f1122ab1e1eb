"""Returns: a mail house's return files stored in `direct_mail.returns`, from a file or a routing's folder.

Each file is all or nothing: it is read and checked whole (directmail/returnfile.py), then its new
returns and the file's own row (`direct_mail.return_files`, with its sha256) are written in one
transaction. Ingesting is idempotent twice over: a file whose bytes were ingested before (under any name)
stores nothing, and a return already stored (same identity, reason and returned_at) is not stored again.
Writes hold the warehouse lock, so an ingest waits for a run in progress, and a run for an ingest.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from directmail.builder import TargetInfo
from directmail.config import CONFIG_FILE, DirectMailConfig
from directmail.delivery import open_destination
from directmail.delivery.preflight import routing_findings
from directmail.errors import ConfigError, DirectMailError, Finding
from directmail.history import RETURN_FILES, RETURNS, History
from directmail.locking import warehouse_lock
from directmail.returnfile import ReturnFileRefused, ReturnRow, parse_return_file
from directmail.secrets import scrub
from directmail.warehouse import Warehouse, open_warehouse

RETURNS_FOLDER = "returns"  # under a routing's directory, prefix or container prefix
ACCEPTED_SUFFIXES = (".csv", ".txt")
_PENDING = "_dm_return_rows"  # a temporary table (Warehouse.dialect.temporary_relation)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Ingested:
    """One file ingested (or found ingested before): what it held and what it added."""

    name: str
    sha256: str
    rows: int  # returns in the file, a row repeated in the file counted once
    new: int  # returns stored now (0 when the file, or each of its returns, was ingested before)
    earlier: str | None = None  # the name the same bytes were ingested under before

    def describe(self) -> str:
        if self.earlier is not None:
            return f"{self.name}: already ingested (as {self.earlier}); nothing stored"
        kept = self.rows - self.new
        known = f", {kept:,} already stored" if kept else ""
        return f"{self.name}: {self.rows:,} return(s), {self.new:,} new{known}"


@dataclass
class PullReport:
    """What pulling a routing's returns folder did, file by file."""

    routing: str
    where: str
    ingested: list[Ingested] = field(default_factory=list)
    skipped: list[Ingested] = field(default_factory=list)  # the same bytes were ingested before
    refused: list[ReturnFileRefused] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # not .csv or .txt

    @property
    def ok(self) -> bool:
        return not self.refused

    def lines(self) -> list[str]:
        """What was found and done (the refusals are in refusal_lines)."""
        found = len(self.ingested) + len(self.skipped) + len(self.refused) + len(self.ignored)
        lines = [f"routing {self.routing}: {found} file(s) in {self.where}"]
        lines += [f"ingested {item.describe()}" for item in self.ingested]
        lines += [f"skipped {item.describe()}" for item in self.skipped]
        lines += [f"ignored {name}: not a .csv or .txt file" for name in self.ignored]
        return lines

    def refusal_lines(self) -> list[str]:
        return [line for refusal in self.refused for line in refusal.lines()]

    def to_markdown(self) -> str:
        """The report for a Prefect artifact."""
        stored = sum(item.new for item in self.ingested)
        parts = [
            f"# Returns from routing `{self.routing}`",
            "",
            f"{self.where}: {len(self.ingested)} file(s) ingested ({stored:,} new returns), "
            f"{len(self.skipped)} already ingested, {len(self.refused)} refused, "
            f"{len(self.ignored)} ignored.",
            "",
        ]
        if self.ingested or self.skipped:
            parts += ["| File | Returns | New | sha256 |", "|---|---:|---:|---|"]
            for item in [*self.ingested, *self.skipped]:
                new = "already ingested" if item.earlier else f"{item.new:,}"
                parts.append(f"| {_cell(item.name)} | {item.rows:,} | {new} | `{item.sha256}` |")
            parts.append("")
        for refusal in self.refused:
            parts += [f"## Refused: {_cell(refusal.name)}", "", "```", *refusal.lines(), "```", ""]
        if self.ignored:
            parts += ["Ignored (not .csv or .txt): " + ", ".join(_cell(n) for n in self.ignored), ""]
        return "\n".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# -- storing ------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def earlier_ingest(warehouse: Warehouse, digest: str) -> str | None:
    """The name under which these bytes were ingested, or None."""
    table = warehouse.query(
        f"select source_file from {RETURN_FILES} where source_sha256 = ? order by ingested_at limit 1",
        [digest],
    )
    return table["source_file"][0].as_py() if table.num_rows else None


def store_return_file(
    warehouse: Warehouse, data: bytes, name: str, source: str, ingested_at: datetime | None = None
) -> Ingested:
    """Check the file whole, then store its new returns and its own row in one transaction.

    Raises ReturnFileRefused (nothing stored) when any row is bad. The history tables must exist.
    """
    moment = ingested_at or _now()
    digest = sha256_of(data)
    earlier = earlier_ingest(warehouse, digest)
    if earlier is not None:
        return Ingested(name, digest, 0, 0, earlier)
    rows = parse_return_file(data, name, moment)
    pending = _rows_table(rows, name, digest, moment)
    pending_table = warehouse.dialect.temporary_relation(_PENDING)
    # Without transactions (Spark), a crash between the two appends leaves the returns stored and the
    # file unrecorded: ingesting it again adds no return twice (the key above) and records the file.
    with warehouse.transaction():
        warehouse.execute(f"drop table if exists {pending_table}")
        warehouse.execute(
            warehouse.dialect.create_temporary_table(pending_table, f"select * from {RETURNS} limit 0")
        )
        try:
            warehouse.append(pending_table, pending)
            new = warehouse.query(
                f"select count(*) as n from {pending_table} as p where not exists ({_same_return('p')})"
            )["n"][0].as_py()
            warehouse.execute(
                f"insert into {RETURNS} select * from {pending_table} as p "
                f"where not exists ({_same_return('p')})"
            )
        finally:
            warehouse.execute(f"drop table if exists {pending_table}")
        file_row = {
            "source_file": name,
            "source_sha256": digest,
            "source": source,
            "return_rows": len(rows),
            "new_returns": new,
            "ingested_at": moment,
        }
        warehouse.append(RETURN_FILES, pa.Table.from_pylist([file_row]))
    return Ingested(name, digest, len(rows), new)


def _same_return(alias: str) -> str:
    """The idempotence key: identity, reason and returned_at."""
    return (
        f"select 1 from {RETURNS} as r where r.identity = {alias}.identity "
        f"and r.reason = {alias}.reason and r.returned_at = {alias}.returned_at"
    )


def _rows_table(rows: list[ReturnRow], name: str, digest: str, moment: datetime) -> pa.Table:
    return pa.table(
        {
            "identity": pa.array([r.identity for r in rows], pa.string()),
            "reason": pa.array([r.reason for r in rows], pa.string()),
            "returned_at": pa.array([r.returned_at for r in rows], pa.timestamp("us")),
            "source_file": pa.array([name] * len(rows), pa.string()),
            "source_sha256": pa.array([digest] * len(rows), pa.string()),
            "source_line": pa.array([r.line for r in rows], pa.int32()),
            "ingested_at": pa.array([moment] * len(rows), pa.timestamp("us")),
        }
    )


# -- entry points ---------------------------------------------------------------------------------------


@contextmanager
def _history(target: TargetInfo, project_dir: Path, progress: Progress) -> Iterator[Warehouse]:
    """The warehouse under the run lock, with the history tables in place."""
    with warehouse_lock(target, project_dir, progress):
        warehouse = open_warehouse(target, project_dir)
        try:
            History(warehouse).ensure_tables()
            yield warehouse
        finally:
            warehouse.close()


def ingest_file(
    path: Path,
    target: TargetInfo,
    project_dir: Path,
    ingested_at: datetime | None = None,
    progress: Progress = lambda message: None,
) -> Ingested:
    """`directmail returns ingest FILE`: the file is recorded under its base name."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DirectMailError(f"{path}: cannot read the return file: {exc.strerror or exc}") from None
    with _history(target, project_dir, progress) as warehouse:
        return store_return_file(warehouse, data, path.name, f"file {path.resolve()}", ingested_at)


def pull_returns(
    config: DirectMailConfig,
    routing_name: str,
    target: TargetInfo,
    project_dir: Path,
    ingested_at: datetime | None = None,
    progress: Progress = lambda message: None,
) -> PullReport:
    """Every file of the routing's `returns/` folder not ingested before, each all or nothing.

    Files are never moved or removed at the destination (it is often the mail house's server, read
    only for us): what was ingested is known by each file's sha256.
    """
    routing = config.routing.get(routing_name)
    key = f"routing.{routing_name}"
    if routing is None:
        known = ", ".join(sorted(config.routing)) or "none"
        raise ConfigError([Finding(CONFIG_FILE, key, f"no such routing (defined: {known})")])
    if routing.status != "active":
        raise ConfigError([Finding(CONFIG_FILE, f"{key}.status", "the routing is a draft")])
    if findings := routing_findings(routing_name, routing, project_dir):
        raise ConfigError(findings)
    destination = open_destination(routing_name, routing, project_dir)
    try:
        report = PullReport(routing_name, f"{destination.describe().rstrip('/')}/{RETURNS_FOLDER}/")
        names = destination.list(RETURNS_FOLDER)
        with _history(target, project_dir, progress) as warehouse:
            for relative in names:
                if not relative.lower().endswith(ACCEPTED_SUFFIXES):
                    report.ignored.append(relative)
                    continue
                progress(f"reading {relative}")
                data = destination.read(relative)
                if data is None:  # removed between the listing and the read: the next pull sees
                    continue
                source = f"routing {routing_name} ({routing.type}): {relative}"
                name = posixpath.basename(relative)
                try:
                    item = store_return_file(warehouse, data, name, source, ingested_at)
                except ReturnFileRefused as refusal:
                    report.refused.append(refusal)
                    continue
                (report.skipped if item.earlier else report.ingested).append(item)
    except DirectMailError:
        raise
    except Exception as exc:  # a library error no destination anticipated: its reason, never a secret
        raise DirectMailError(
            scrub(f"returns from routing {routing_name}: {type(exc).__name__}: {exc}")
        ) from None
    finally:
        destination.close()
    return report
