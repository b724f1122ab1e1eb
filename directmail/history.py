"""Contract 5: what was sent to whom, in the warehouse (`direct_mail.runs`, `.sends`, `.exclusions`).

`exclusions` (one row per targeted profile that was not sent, with its reason and detail) and the runs'
`exclusion_details`, `seed_rows` and `delivery_started_at` extend the contract; older warehouses gain them
on the next run.

Exactly once: before the first byte leaves, one transaction records the run `delivering` (with the files
it will put) and writes its rows into `send_rows` / `exclusion_rows`, tagged with the attempt. `sends` and
`exclusions` are views of the rows of each run's committed attempt, so those rows appear only when, after
the manifest landed, one statement records the run `delivered` with that attempt committed. A crash in
between leaves the run `delivering` with its rows written but not visible: the next run of that id
settles it from what the destination holds, without the extract that produced them. The rows are written
once (no copy from a staging table at commit), so the commit costs one row whatever the audience.

A warehouse without transactions (Spark's parquet tables) keeps the same contract append-only, on two
facts: appending one file to a table is atomic (a rename), and the runner holds the warehouse lock (one
writer). `runs` is then a view of the latest version of each run's row in `run_versions`; before the
first row of an attempt is written, a `reserved` version takes its number (so no later attempt ever
reuses it, even after a crash); the run is recorded `delivering` (settleable) only once all its rows
are written; and `delivered` is one appended version. Rows of attempts that never commit stay in
`send_rows` / `exclusion_rows`, invisible (no delete on parquet). See history_ddl(transactional=False).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from directmail.warehouse import Warehouse

SCHEMA = "direct_mail"
RUNS = f"{SCHEMA}.runs"
SENDS = f"{SCHEMA}.sends"
EXCLUSIONS = f"{SCHEMA}.exclusions"
SEND_ROWS = f"{SCHEMA}.send_rows"
EXCLUSION_ROWS = f"{SCHEMA}.exclusion_rows"
RETURNS = f"{SCHEMA}.returns"
RETURN_FILES = f"{SCHEMA}.return_files"
ADDRESS_VALIDATIONS = f"{SCHEMA}.address_validations"
RUN_VERSIONS = f"{SCHEMA}.run_versions"  # append-only warehouses: every version of every run's row
ADDRESS_VALIDATION_ROWS = f"{SCHEMA}.address_validation_rows"  # append-only: every result, latest wins
RESERVED = "reserved"  # append-only: a version that only takes an attempt number (not a run's state)
DELIVERING = "delivering"
DELIVERED = "delivered"
FAILED = "failed"
EMPTY = "empty"
# What a dry run's report says (never recorded): it wrote the files and delivered nothing.
DRY_RUN = "dry run"
DRY_RUN_EMPTY = "dry run: empty"
# A delivered run whose drop a later run replaced on purpose (`on_existing: replace`): its rows stay in
# send_rows / exclusion_rows for the record, but it is no longer a drop, so it counts toward no cap.
SUPERSEDED = "superseded"
ONCE_DELIVERED = (DELIVERED, SUPERSEDED)  # a run id that reached its mail house once: never again unforced
# Statuses of a run whose drop may have landed without being recorded (with delivery_started_at set).
PENDING_STATUSES = (DELIVERING, FAILED)

TABLE_DDL = [
    f"create schema if not exists {SCHEMA}",
    f"""create table if not exists {RUNS} (
        run_id varchar not null,
        campaign varchar not null,
        run_time timestamp not null,
        status varchar not null,
        started_at timestamp,
        finished_at timestamp,
        targeted bigint,
        excluded varchar,
        holdout bigint,
        duplicates_removed bigint,
        exported bigint,
        files varchar,
        configuration varchar,
        destination varchar,
        attempt integer,
        message varchar,
        step_seconds varchar,
        exclusion_details varchar,
        seed_rows bigint
    )""",
    # Columns added after the first release: a warehouse created before them gains them here.
    f"alter table {RUNS} add column if not exists exclusion_details varchar",
    f"alter table {RUNS} add column if not exists seed_rows bigint",
    f"alter table {RUNS} add column if not exists delivery_started_at timestamp",
    f"alter table {RUNS} add column if not exists committed_attempt integer",
    f"""create table if not exists {SEND_ROWS} (
        run_id varchar not null,
        campaign varchar not null,
        profile_id varchar not null,
        file_name varchar,
        is_holdout boolean not null,
        sent_at timestamp not null,
        attempt integer not null
    )""",
    f"""create table if not exists {EXCLUSION_ROWS} (
        run_id varchar not null,
        campaign varchar not null,
        profile_id varchar not null,
        reason varchar not null,
        detail varchar,
        recorded_at timestamp not null,
        attempt integer not null
    )""",
    # A mail house's returns (directmail/returns.py): one row per identity, reason and returned_at.
    f"""create table if not exists {RETURNS} (
        identity varchar not null,
        reason varchar not null,
        returned_at timestamp not null,
        source_file varchar not null,
        source_sha256 varchar not null,
        source_line integer not null,
        ingested_at timestamp not null
    )""",
    # Every return file ingested, once per content (sha256), even one that added no new return.
    f"""create table if not exists {RETURN_FILES} (
        source_file varchar not null,
        source_sha256 varchar not null,
        source varchar not null,
        return_rows bigint not null,
        new_returns bigint not null,
        ingested_at timestamp not null
    )""",
    # Address validation results (directmail/address_validations.py): one row per address key, written
    # by the runner before it builds the models that read them, so a plain `dbt build` finds the table.
    f"""create table if not exists {ADDRESS_VALIDATIONS} (
        address_key varchar not null,
        is_valid_address boolean not null,
        address_errors varchar,
        normalized_address_line_1 varchar,
        normalized_address_line_2 varchar,
        normalized_postal_code varchar,
        normalized_city varchar,
        normalized_region varchar,
        normalized_country_code varchar,
        household_key varchar,
        validator_version varchar not null,
        validated_at timestamp not null
    )""",
]


@dataclass
class RunRecord:
    run_id: str
    campaign: str
    run_time: datetime
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    targeted: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    holdout: int = 0
    duplicates_removed: int = 0
    exported: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    configuration: str = ""
    destination: str = ""
    attempt: int = 1
    message: str = ""
    step_seconds: dict[str, float] = field(default_factory=dict)
    exclusion_details: dict[str, dict[str, int]] = field(default_factory=dict)
    seed_rows: int = 0
    delivery_started_at: datetime | None = None  # set when the run is recorded delivering
    committed_attempt: int | None = None  # the attempt whose rows `sends` and `exclusions` show

    @property
    def may_have_landed(self) -> bool:
        """Not recorded delivered, but its delivery had started: the destination tells what landed."""
        return self.status in PENDING_STATUSES and self.delivery_started_at is not None

    def as_row(self) -> dict[str, Any]:
        row = dict(self.__dict__)
        for key in _JSON_COLUMNS:
            row[key] = json.dumps(row[key], ensure_ascii=False)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        values = dict(row)
        for key, empty in _JSON_COLUMNS.items():
            values[key] = json.loads(values[key]) if values.get(key) else type(empty)()
        values["seed_rows"] = values.get("seed_rows") or 0
        return cls(**values)


# Contract 5's tables, as views of the committed attempt's rows.
VIEWS = {
    SENDS: (SEND_ROWS, "run_id, campaign, profile_id, file_name, is_holdout, sent_at"),
    EXCLUSIONS: (EXCLUSION_ROWS, "run_id, campaign, profile_id, reason, detail, recorded_at"),
}
VIEW_SQL = {
    view: f"select {', '.join('r.' + c for c in columns.split(', '))} "
    f"from {rows} as r join {RUNS} as runs "
    "on runs.run_id = r.run_id and runs.committed_attempt = r.attempt"
    for view, (rows, columns) in VIEWS.items()
}
VIEW_DDL = [f"create view if not exists {view} as {sql}" for view, sql in VIEW_SQL.items()]
DDL = [*TABLE_DDL, *VIEW_DDL]  # a new warehouse (the sample generator) runs them as they are


def _append_only_table(statement: str) -> str:
    """A table of TABLE_DDL in Spark SQL: parquet, `string` and `timestamp_ntz` (UTC, as naive
    timestamps are elsewhere), no NOT NULL (enforced by the writer)."""
    statement = statement.replace(" not null", "").replace(" varchar", " string")
    statement = statement.replace(" timestamp", " timestamp_ntz")
    return statement + " using parquet"


def _latest(table: str, key: str, order: str, columns: str, where: str = "") -> str:
    """The latest row per key of an append-only table."""
    return (
        f"select {columns} from (select *, row_number() over (partition by {key} order by {order}) "
        f"as _dm_latest from {table}{where}) as versions where _dm_latest = 1"
    )


_RUN_COLUMNS = (
    "run_id, campaign, run_time, status, started_at, finished_at, targeted, excluded, holdout, "
    "duplicates_removed, exported, files, configuration, destination, attempt, message, step_seconds, "
    "exclusion_details, seed_rows, delivery_started_at, committed_attempt"
)
_VALIDATION_COLUMNS = (
    "address_key, is_valid_address, address_errors, normalized_address_line_1, normalized_address_line_2, "
    "normalized_postal_code, normalized_city, normalized_region, normalized_country_code, household_key, "
    "validator_version, validated_at"
)


def history_ddl(transactional: bool = True) -> list[str]:
    """The statements creating an empty history: DDL on a transactional warehouse (DuckDB, PostgreSQL
    once `create view if not exists` is spelled its way); on one without transactions (Spark), the
    append-only tables and the views that give contract 5's relations from them."""
    if transactional:
        return list(DDL)
    tables = [statement for statement in TABLE_DDL if statement.lstrip().startswith("create table")]
    runs_table, *others = tables
    versions = runs_table.replace(f"{RUNS} (", f"{RUN_VERSIONS} (").replace(
        "seed_rows bigint\n",
        "seed_rows bigint,\n        delivery_started_at timestamp,\n"
        "        committed_attempt integer,\n        version bigint\n",
    )
    others = [s.replace(f"{ADDRESS_VALIDATIONS} (", f"{ADDRESS_VALIDATION_ROWS} (") for s in others]
    runs_view = _latest(
        RUN_VERSIONS, "run_id", "version desc", _RUN_COLUMNS, f" where status <> '{RESERVED}'"
    )
    validations_view = _latest(
        ADDRESS_VALIDATION_ROWS,
        "address_key",
        "validated_at desc, validator_version desc",
        _VALIDATION_COLUMNS,
    )
    return [
        f"create database if not exists {SCHEMA}",
        *(_append_only_table(statement) for statement in [versions, *others]),
        f"create view if not exists {RUNS} as {runs_view}",
        f"create view if not exists {ADDRESS_VALIDATIONS} as {validations_view}",
        *VIEW_DDL,
    ]


_JSON_COLUMNS: dict[str, Any] = {"excluded": {}, "files": [], "step_seconds": {}, "exclusion_details": {}}


class History:
    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse
        # Without transactions, every write is an append in an order a crash cannot corrupt.
        self.append_only = not warehouse.transactional
        self._versions: dict[str, int] = {}  # append-only: the last version written per run id

    def ensure_tables(self) -> None:
        if self.append_only:
            # The statements run in order: when the first table and the last view exist, all do (two
            # catalog lookups instead of ten metastore statements per open).
            if self.warehouse.relation_exists(RUN_VERSIONS) and self.warehouse.relation_exists(EXCLUSIONS):
                return
            for statement in history_ddl(transactional=False):
                self.warehouse.execute(statement)
            return
        for statement in TABLE_DDL:
            self.warehouse.execute(statement)
        self._migrate_tables()
        for view, sql in VIEW_SQL.items():  # `create view if not exists` is DuckDB's only
            if not self.warehouse.relation_exists(view):
                self.warehouse.execute(f"create view {view} as {sql}")

    def _migrate_tables(self) -> None:
        """Warehouses from before the views held `sends` and `exclusions` as tables of delivered runs."""
        tables = self.warehouse.query(
            "select table_name from information_schema.tables where table_schema = ? "
            "and table_type = 'BASE TABLE' and table_name in ('sends', 'exclusions')",
            [SCHEMA],
        )["table_name"].to_pylist()
        if not tables:
            return
        with self.warehouse.transaction():
            for name in tables:
                old = f"{SCHEMA}.{name}"
                # Rows whose run row was never written (a crash between the old statements): they were
                # delivered, so they keep counting, under a run row that says where it came from.
                moment = "sent_at" if name == "sends" else "recorded_at"
                self.warehouse.execute(
                    f"insert into {RUNS} (run_id, campaign, run_time, status, attempt, message) "
                    f"select run_id, min(campaign), min({moment}), '{DELIVERED}', 1, "
                    f"'recorded from its {name} rows: the run row was missing' from {old} "
                    f"where run_id not in (select run_id from {RUNS}) group by run_id"
                )
                self.warehouse.execute(
                    f"insert into {VIEWS[old][0]} select old.*, coalesce(runs.attempt, 1) "
                    f"from {old} as old join {RUNS} as runs on runs.run_id = old.run_id"
                )
                self.warehouse.execute(f"drop table {old}")
            self.warehouse.execute(
                f"update {RUNS} set committed_attempt = coalesce(attempt, 1) "
                f"where status = '{DELIVERED}' and committed_attempt is null"
            )

    def find(self, run_id: str) -> RunRecord | None:
        rows = self.warehouse.rows(f"select * from {RUNS} where run_id = ?", [run_id])
        return RunRecord.from_row(rows[0]) if rows else None

    def next_attempt(self, run_id: str, previous: RunRecord | None) -> int:
        """The number of the run id's next attempt: never one an earlier attempt used, even one that
        crashed before recording anything but its reservation (append-only)."""
        used = previous.attempt if previous is not None else 0
        if self.append_only:
            rows = self.warehouse.rows(
                f"select max(attempt) as attempt from {RUN_VERSIONS} where run_id = ?", [run_id]
            )
            used = max(used, rows[0]["attempt"] or 0)
        return used + 1

    def save_run(self, record: RunRecord) -> None:
        """Insert or replace the run's row (on its own: for runs that deliver nothing)."""
        with self.warehouse.transaction():
            self._save_run(record)

    def _save_run(self, record: RunRecord, status: str | None = None) -> None:
        row = record.as_row()
        if not self.append_only:
            # A statement with parameters, not an Arrow table: Arrow's conversion of Python values loads
            # pandas (a second of a run's start-up) to look for its types.
            columns = ", ".join(row)
            self.warehouse.execute(f"delete from {RUNS} where run_id = ?", [record.run_id])
            self.warehouse.execute(
                f"insert into {RUNS} ({columns}) values ({', '.join('?' * len(row))})", list(row.values())
            )
            return
        import pyarrow as pa  # Spark appends one file: an Arrow table of the one row

        # One appended file: the new version is there whole or not at all.
        if status is not None:
            row["status"] = status
        row["version"] = self._next_version(record.run_id)
        self.warehouse.append(RUN_VERSIONS, pa.Table.from_pylist([row]))

    def _next_version(self, run_id: str) -> int:
        if run_id not in self._versions:  # the writer holds the warehouse lock: nobody else appends
            rows = self.warehouse.rows(
                f"select max(version) as version from {RUN_VERSIONS} where run_id = ?", [run_id]
            )
            self._versions[run_id] = rows[0]["version"] or 0
        self._versions[run_id] += 1
        return self._versions[run_id]

    def _reserve(self, record: RunRecord) -> None:
        """Append-only: take the attempt's number before its first row is written. The `runs` view skips
        this version, so the run's state (delivered, settleable, …) is what it was."""
        self._save_run(record, status=RESERVED)

    def mark_delivering(
        self, record: RunRecord, sends_sql: str, exclusions_sql: str, superseding: Sequence[RunRecord] = ()
    ) -> None:
        """Before the first byte leaves: the run `delivering` with its planned files, and this attempt's
        rows written (not yet visible in `sends` and `exclusions`).

        Append-only: the run is recorded `delivering` (and so settleable) only after all its rows are
        written, so a settled attempt never has rows missing."""
        if self.append_only:
            self._reserve(record)
            self.warehouse.execute(f"insert into {SEND_ROWS} {sends_sql}")
            self.warehouse.execute(f"insert into {EXCLUSION_ROWS} {exclusions_sql}")
            self._supersede(superseding, record.run_id)
            self._save_run(record)
            return
        with self.warehouse.transaction():
            self._discard(record.run_id, record.committed_attempt)
            self.warehouse.execute(f"insert into {SEND_ROWS} {sends_sql}")
            self.warehouse.execute(f"insert into {EXCLUSION_ROWS} {exclusions_sql}")
            self._supersede(superseding, record.run_id)
            self._save_run(record)

    def _supersede(self, earlier: Sequence[RunRecord], by: str) -> None:
        """Delivered drops this run replaces on purpose: no longer drops, so no longer in `sends`."""
        for run in earlier:
            message = f"superseded by {by}: its drop was replaced at the destination (on_existing: replace)"
            self._save_run(replace(run, status=SUPERSEDED, committed_attempt=None, message=message))

    def settle_never_landed(self, record: RunRecord, by: str) -> None:
        """Another run id's attempt whose drop never completed: its rows go and it is no longer
        settleable (running that run id again delivers it afresh)."""
        message = (
            f"its drop never completed at the destination (settled before {by}); run it again to deliver"
        )
        settled = replace(record, status=FAILED, delivery_started_at=None, message=message)
        if self.append_only:
            self._save_run(settled)
            return
        with self.warehouse.transaction():
            self._discard(record.run_id, record.committed_attempt)
            self._save_run(settled)

    def unsettled(self, campaigns: list[str], other_than: str) -> list[RunRecord]:
        """Runs of these campaigns, other than `other_than`, whose drop may have landed unrecorded."""
        if not campaigns or not self.warehouse.relation_exists(RUNS):
            return []
        marks = ", ".join("?" * len(campaigns))
        statuses = ", ".join(f"'{status}'" for status in PENDING_STATUSES)
        rows = self.warehouse.rows(
            f"select * from {RUNS} where campaign in ({marks}) and run_id <> ? and status in ({statuses}) "
            "and delivery_started_at is not null order by delivery_started_at",
            [*campaigns, other_than],
        )
        return [RunRecord.from_row(row) for row in rows]

    def delivered(self, campaign: str) -> list[RunRecord]:
        """The campaign's delivered runs, in the order their deliveries started."""
        if not self.warehouse.relation_exists(RUNS):
            return []
        rows = self.warehouse.rows(
            f"select * from {RUNS} where campaign = ? and status = '{DELIVERED}' "
            "order by coalesce(delivery_started_at, finished_at, started_at)",
            [campaign],
        )
        return [RunRecord.from_row(row) for row in rows]

    def commit_delivered(self, record: RunRecord) -> None:
        """After the manifest landed: the run `delivered`, its attempt's rows the visible ones."""
        record.committed_attempt = record.attempt
        with self.warehouse.transaction():
            self._save_run(record)
            self._discard(record.run_id, record.attempt)

    def record_empty(self, record: RunRecord, exclusions_sql: str) -> None:
        """A run with nothing to deliver: its row, and why each targeted profile was not sent."""
        record.committed_attempt = record.attempt
        if self.append_only:
            self._reserve(record)
            self.warehouse.execute(f"insert into {EXCLUSION_ROWS} {exclusions_sql}")
            self._save_run(record)
            return
        with self.warehouse.transaction():
            self._discard(record.run_id, None)
            self.warehouse.execute(f"insert into {EXCLUSION_ROWS} {exclusions_sql}")
            self._save_run(record)

    def discard_pending(self, record: RunRecord) -> None:
        """An attempt whose drop never landed: its rows go (the run delivers again, with fresh ones)."""
        with self.warehouse.transaction():
            self._discard(record.run_id, record.committed_attempt)

    def _discard(self, run_id: str, keep_attempt: int | None) -> None:
        """Remove the run's rows of every attempt but the committed one. Append-only: they stay, never
        visible (the views show the committed attempt's rows only, and no attempt number is reused)."""
        if self.append_only:
            return
        keep = "" if keep_attempt is None else f" and attempt <> {int(keep_attempt)}"
        for table in (SEND_ROWS, EXCLUSION_ROWS):
            self.warehouse.execute(f"delete from {table} where run_id = ?{keep}", [run_id])

    def runs(
        self, campaign: str | None = None, run_id: str | None = None, limit: int = 20
    ) -> list[RunRecord]:
        if not self.warehouse.relation_exists(RUNS):
            return []
        conditions, params = [], []
        if campaign:
            conditions.append("campaign = ?")
            params.append(campaign)
        if run_id:
            conditions.append("run_id = ?")
            params.append(run_id)
        where = f"where {' and '.join(conditions)}" if conditions else ""
        # The latest run is the one of the latest run time, for every command (report, list, diff, explain):
        # the moment its audience was taken, not when it was executed.
        sql = f"select * from {RUNS} {where} order by run_time desc, started_at desc limit {int(limit)}"
        return [RunRecord.from_row(row) for row in self.warehouse.rows(sql, params)]

    def latest_delivery(self, campaign: str) -> RunRecord | None:
        """The campaign's latest run whose delivery started (its files may be at the destination)."""
        if not self.warehouse.relation_exists(RUNS):
            return None
        sql = (
            f"select * from {RUNS} where campaign = ? and delivery_started_at is not null "
            "order by delivery_started_at desc limit 1"
        )
        rows = self.warehouse.rows(sql, [campaign])
        return RunRecord.from_row(rows[0]) if rows else None

    def last_runs(self) -> dict[str, RunRecord]:
        last: dict[str, RunRecord] = {}
        for record in reversed(self.runs(limit=100_000)):
            last[record.campaign] = record
        return last


def spark_ddl() -> list[str]:
    """The history on Spark (the sample generator creates an empty one with it): history_ddl's
    append-only statements."""
    return history_ddl(transactional=False)
