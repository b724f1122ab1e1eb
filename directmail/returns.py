"""Returns: a mail house's return files stored in `direct_mail.returns`, from a file or a routing's folder.

Each file is all or nothing: it is read and checked whole (directmail/returnfile.py), then its new
returns and the file's own row (`direct_mail.return_files`, with its sha256) are written in one
transaction; the counts reported are the rows the warehouse then holds for the file (any disagreement
rolls it back). Ingesting is idempotent twice over: a file whose bytes were ingested before (under any
name) stores nothing, and a return already stored (same identity, reason and returned_at; for a return
the file does not date, same identity and reason) is not stored again. Returns whose identity was never
mailed, or holds a control or invisible character, are reported (or, strict, refuse the file).
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
from directmail.history import RETURN_FILES, RETURNS, SENDS, History
from directmail.locking import warehouse_lock
from directmail.returnfile import BadRow, ReturnFileRefused, ReturnRow, odd_characters, parse_return_file
from directmail.secrets import scrub
from directmail.warehouse import SqlDialect, Warehouse, open_warehouse

RETURNS_FOLDER = "returns"  # under a routing's directory, prefix or container prefix
ACCEPTED_SUFFIXES = (".csv", ".txt")
_PENDING = "_dm_return_rows"  # a temporary table (Warehouse.dialect.temporary_relation)
_DATED = "_dm_dated"  # its column: whether the file gave the return's returned_at
RETURN_COLUMNS = (
    "identity",
    "reason",
    "returned_at",
    "source_file",
    "source_sha256",
    "source_line",
    "ingested_at",
)
# Returns whose identity likely suppresses nobody, by kind (a return may be of several): what it does.
DOUBTS = {
    "unmailed": "matches no mailed profile",
    "case_only": "matches a mailed profile only ignoring letter case",
    "control": "holds a control character",
    "invisible": "holds an invisible format character",
}
MAX_SHOWN = 5  # returns shown per kind; the count of the rest follows

Progress = Callable[[str], None]


class ReturnsNotStored(DirectMailError):
    """The warehouse did not store (or count) what it was given: rolled back, nothing stored."""


@dataclass(frozen=True)
class Suspect:
    """A return whose identity likely suppresses nobody (a typo, an export artefact, another brand's)."""

    line: int
    identity: str
    flags: tuple[tuple[str, str], ...]  # (kind of DOUBTS, why), e.g. ("invisible", "holds … (U+200B)")
    mailed_as: str | None = None  # case_only: the identity as it was mailed

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind, _ in self.flags)

    def shown(self) -> str:
        """Its line and identity, escaped so that an invisible character shows: `line 4 'P1\\u200b'`."""
        mailed = f" (mailed as {self.mailed_as!r})" if self.mailed_as is not None else ""
        return f"line {self.line} {self.identity!r}{mailed}"

    def bad_row(self) -> BadRow:
        """What `--strict` refuses the file for."""
        why = "; ".join(reason for _, reason in self.flags)
        return BadRow(self.line, f"identity {self.identity!r} {why} (--strict)")


@dataclass(frozen=True)
class Doubt:
    """How many returns of a file are of one kind of DOUBTS, and the first few."""

    kind: str
    count: int
    first: tuple[Suspect, ...]

    def describe(self, name: str) -> str:
        shown = ", ".join(suspect.shown() for suspect in self.first)
        rest = self.count - len(self.first)
        more = f", and {rest:,} more" if rest else ""
        return f"warning: {name}: {self.count:,} return(s) whose identity {DOUBTS[self.kind]}: {shown}{more}"


@dataclass(frozen=True)
class Ingested:
    """One file ingested (or found ingested before): what it held and what it added."""

    name: str
    sha256: str
    rows: int  # returns in the file, a row repeated in the file counted once
    new: int  # returns stored now, counted in the warehouse (0 when the file was ingested before)
    earlier: str | None = None  # the name the same bytes were ingested under before
    doubts: tuple[Doubt, ...] = ()  # its returns that likely suppress nobody, by kind

    def describe(self) -> str:
        if self.earlier is not None:
            return f"{self.name}: already ingested (as {self.earlier}); nothing stored"
        kept = self.rows - self.new
        known = f", {kept:,} already stored" if kept else ""
        return f"{self.name}: {self.rows:,} return(s), {self.new:,} new{known}"

    def doubt_lines(self) -> list[str]:
        """Printed after describe(): each kind of doubtful identity, counted, the first few shown."""
        return [doubt.describe(self.name) for doubt in self.doubts]


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
        for item in self.ingested:
            lines += [f"ingested {item.describe()}", *item.doubt_lines()]
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
        if doubts := [line for item in self.ingested for line in item.doubt_lines()]:
            parts += ["## Doubtful identities", "", "```", *doubts, "```", ""]
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
    warehouse: Warehouse,
    data: bytes,
    name: str,
    source: str,
    ingested_at: datetime | None = None,
    strict: bool = False,
) -> Ingested:
    """Check the file whole, then store its new returns and its own row in one transaction.

    Raises ReturnFileRefused (nothing stored) when any row is bad, or with `strict` when any identity is
    doubtful; ReturnsNotStored (rolled back) when the warehouse did not store what it was given. The
    history tables must exist.
    """
    moment = ingested_at or _now()
    digest = sha256_of(data)
    earlier = earlier_ingest(warehouse, digest)
    if earlier is not None:
        return Ingested(name, digest, 0, 0, earlier)
    rows = parse_return_file(data, name, moment)
    pending_table = warehouse.dialect.temporary_relation(_PENDING)
    # Without transactions (Spark), a crash between the two appends leaves the returns stored and the
    # file unrecorded: ingesting it again adds no return twice (the key below) and records the file.
    with warehouse.transaction():
        warehouse.execute(f"drop table if exists {pending_table}")
        columns = _pending_columns(warehouse.dialect)
        warehouse.execute(warehouse.dialect.create_empty_temporary_table(pending_table, columns))
        try:
            warehouse.append(pending_table, _rows_table(rows, name, digest, moment))
            new = _new_returns(warehouse, pending_table, name, len(rows))
            suspects = _suspects(warehouse, pending_table, name, rows)
            if strict and suspects:
                raise ReturnFileRefused(name, [suspect.bad_row() for suspect in suspects])
            stored = _insert_new(warehouse, pending_table, name, digest, new)
        finally:
            warehouse.execute(f"drop table if exists {pending_table}")
        file_row = {
            "source_file": name,
            "source_sha256": digest,
            "source": source,
            "return_rows": len(rows),
            "new_returns": stored,
            "ingested_at": moment,
        }
        warehouse.append(RETURN_FILES, pa.Table.from_pylist([file_row]))
    return Ingested(name, digest, len(rows), stored, doubts=_doubts(suspects))


def _pending_columns(dialect: SqlDialect) -> list[tuple[str, str]]:
    """The returns' columns, declared (see SqlDialect.create_empty_temporary_table), and whether the
    file dated the return."""
    text, moment = dialect.text_type, "timestamp"
    types = [text, text, moment, text, text, "integer", moment]
    return [*zip(RETURN_COLUMNS, types, strict=True), (_DATED, "boolean")]


def _new_returns(warehouse: Warehouse, pending: str, name: str, expected: int) -> int:
    """The file's returns not stored before. The staged rows, the new ones and the known ones are
    counted apart: they add up, or the warehouse lost rows (and nothing is stored)."""
    staged = _count(warehouse, f"from {pending}")
    new = _count(warehouse, f"from {pending} as p where not exists ({_same_return('p')})")
    known = _count(warehouse, f"from {pending} as p where exists ({_same_return('p')})")
    if staged != expected or new + known != expected:
        raise ReturnsNotStored(
            f"{name}: nothing stored: the warehouse counted {staged:,} staged return(s) of {expected:,}, "
            f"{new:,} new and {known:,} already stored; it cannot be trusted to store them"
        )
    return new


def _insert_new(warehouse: Warehouse, pending: str, name: str, digest: str, new: int) -> int:
    """Store the new returns; the rows stored for this file, counted after, must be those."""
    before = _stored_rows(warehouse, digest)  # 0 but after a crash on Spark (no transactions)
    columns = ", ".join(RETURN_COLUMNS)
    warehouse.execute(
        f"insert into {RETURNS} ({columns}) select {columns} from {pending} as p "
        f"where not exists ({_same_return('p')})"
    )
    stored = _stored_rows(warehouse, digest) - before
    if stored != new:
        undone = "rolled back" if warehouse.transactional else "no transactions: ingest it again"
        raise ReturnsNotStored(
            f"{name}: nothing stored: the warehouse stored {stored:,} of its {new:,} new return(s) ({undone})"
        )
    return stored


def _stored_rows(warehouse: Warehouse, digest: str) -> int:
    return _count(warehouse, f"from {RETURNS} where source_sha256 = ?", [digest])


def _count(warehouse: Warehouse, where: str, params: list[str] | None = None) -> int:
    """`select count(*) <where>`: each count a plain statement of its own, as every dialect runs it."""
    return int(warehouse.rows(f"select count(*) as n {where}", params)[0]["n"])


def _same_return(alias: str) -> str:
    """The idempotence key: identity, reason and returned_at; for a return the file did not date,
    identity and reason (its returned_at, the ingest time, would make each ingest a new return)."""
    return (
        f"select 1 from {RETURNS} as r where r.identity = {alias}.identity "
        f"and r.reason = {alias}.reason and (not {alias}.{_DATED} or r.returned_at = {alias}.returned_at)"
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
            _DATED: pa.array([r.dated for r in rows], pa.bool_()),
        }
    )


# -- doubtful identities -------------------------------------------------------------------------------


def _suspects(warehouse: Warehouse, pending: str, name: str, rows: list[ReturnRow]) -> list[Suspect]:
    """The file's returns whose identity likely suppresses nobody, in file order."""
    unmailed = _unmailed(warehouse, pending, name, len(rows))
    suspects = []
    for row in rows:
        flags = [(kind, _odd_reason(kind, char)) for kind, char in odd_characters(row.identity).items()]
        if row.line in unmailed:
            mailed_as = unmailed[row.line]
            if mailed_as is None:
                flags.append(("unmailed", DOUBTS["unmailed"]))
            else:
                flags.append(("case_only", f"{DOUBTS['case_only']} ({mailed_as!r})"))
        if flags:
            suspects.append(Suspect(row.line, row.identity, tuple(flags), unmailed.get(row.line)))
    return suspects


def _odd_reason(kind: str, character: str) -> str:
    return f"{DOUBTS[kind]} (U+{ord(character):04X})"


def _unmailed(warehouse: Warehouse, pending: str, name: str, expected: int) -> dict[int, str | None]:
    """Line → the identity as mailed but for letter case (None: not at all), for each staged return
    whose identity was never mailed (held out is not mailed). Checked like _new_returns' counts."""
    d = warehouse.dialect
    mailed = f"(select distinct profile_id from {SENDS} where not is_holdout)"
    folded = (
        f"(select lower(profile_id) as folded, min({d.code_point_order('profile_id')}) as mailed_as "
        f"from {SENDS} where not is_holdout group by lower(profile_id))"
    )
    table = warehouse.query(
        f"select p.source_line as line, c.mailed_as from {pending} as p "
        f"left join {mailed} as m on m.profile_id = p.identity "
        f"left join {folded} as c on c.folded = lower(p.identity) where m.profile_id is null"
    )
    known = _count(warehouse, f"from {pending} as p join {mailed} as m on m.profile_id = p.identity")
    if table.num_rows + known != expected:
        raise ReturnsNotStored(
            f"{name}: nothing stored: the warehouse matched {known:,} return(s) to mailed profiles "
            f"and {table.num_rows:,} to none, of {expected:,}"
        )
    return dict(zip(table["line"].to_pylist(), table["mailed_as"].to_pylist(), strict=True))


def _doubts(suspects: list[Suspect]) -> tuple[Doubt, ...]:
    """Per kind, in DOUBTS' order: how many returns, and the first few."""
    doubts = []
    for kind in DOUBTS:
        of_kind = [suspect for suspect in suspects if kind in suspect.kinds]
        if of_kind:
            doubts.append(Doubt(kind, len(of_kind), tuple(of_kind[:MAX_SHOWN])))
    return tuple(doubts)


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
    strict: bool = False,
) -> Ingested:
    """`directmail returns ingest FILE [--strict]`: the file is recorded under its base name."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DirectMailError(f"{path}: cannot read the return file: {exc.strerror or exc}") from None
    with _history(target, project_dir, progress) as warehouse:
        return store_return_file(warehouse, data, path.name, f"file {path.resolve()}", ingested_at, strict)


def pull_returns(
    config: DirectMailConfig,
    routing_name: str,
    target: TargetInfo,
    project_dir: Path,
    ingested_at: datetime | None = None,
    progress: Progress = lambda message: None,
    strict: bool = False,
) -> PullReport:
    """Every file of the routing's `returns/` folder not ingested before, each all or nothing (with
    `strict`, a file with a doubtful identity is refused like one with a bad row).

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
                    item = store_return_file(warehouse, data, name, source, ingested_at, strict)
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
