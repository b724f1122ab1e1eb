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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
DELIVERING = "delivering"
DELIVERED = "delivered"
FAILED = "failed"
EMPTY = "empty"

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
        return self.status in (DELIVERING, FAILED) and self.delivery_started_at is not None

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

_JSON_COLUMNS: dict[str, Any] = {"excluded": {}, "files": [], "step_seconds": {}, "exclusion_details": {}}


class History:
    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def ensure_tables(self) -> None:
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

    def save_run(self, record: RunRecord) -> None:
        """Insert or replace the run's row (on its own: for runs that deliver nothing)."""
        with self.warehouse.transaction():
            self._save_run(record)

    def _save_run(self, record: RunRecord) -> None:
        # A statement with parameters, not an Arrow table: Arrow's conversion of Python values loads
        # pandas (a second of a run's start-up) to look for its types.
        row = record.as_row()
        columns = ", ".join(row)
        self.warehouse.execute(f"delete from {RUNS} where run_id = ?", [record.run_id])
        self.warehouse.execute(
            f"insert into {RUNS} ({columns}) values ({', '.join('?' * len(row))})", list(row.values())
        )

    def mark_delivering(self, record: RunRecord, sends_sql: str, exclusions_sql: str) -> None:
        """Before the first byte leaves: the run `delivering` with its planned files, and this attempt's
        rows written (not yet visible in `sends` and `exclusions`)."""
        with self.warehouse.transaction():
            self._discard(record.run_id, record.committed_attempt)
            self.warehouse.execute(f"insert into {SEND_ROWS} {sends_sql}")
            self.warehouse.execute(f"insert into {EXCLUSION_ROWS} {exclusions_sql}")
            self._save_run(record)

    def commit_delivered(self, record: RunRecord) -> None:
        """After the manifest landed: the run `delivered`, its attempt's rows the visible ones."""
        record.committed_attempt = record.attempt
        with self.warehouse.transaction():
            self._save_run(record)
            self._discard(record.run_id, record.attempt)

    def record_empty(self, record: RunRecord, exclusions_sql: str) -> None:
        """A run with nothing to deliver: its row, and why each targeted profile was not sent."""
        record.committed_attempt = record.attempt
        with self.warehouse.transaction():
            self._discard(record.run_id, None)
            self.warehouse.execute(f"insert into {EXCLUSION_ROWS} {exclusions_sql}")
            self._save_run(record)

    def discard_pending(self, record: RunRecord) -> None:
        """An attempt whose drop never landed: its rows go (the run delivers again, with fresh ones)."""
        with self.warehouse.transaction():
            self._discard(record.run_id, record.committed_attempt)

    def _discard(self, run_id: str, keep_attempt: int | None) -> None:
        """Remove the run's rows of every attempt but the committed one."""
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
        sql = f"select * from {RUNS} {where} order by started_at desc limit {int(limit)}"
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


# -- Spark ------------------------------------------------------------------------------------------------
# The history's tables on Spark (the Hive metastore of the `spark` target, parquet files). Spark has no
# `varchar` without a length and no `add column if not exists`, so the same columns are declared in one
# `create table` each (without `not null`). The sample generator creates an empty history with these;
# the Spark warehouse's history belongs here too, so that both agree.
_SPARK_TYPES = {"varchar": "string", "integer": "int"}


def spark_ddl() -> list[str]:
    """The history's tables and views on Spark: TABLE_DDL's columns with Spark's types, then VIEW_DDL."""
    added: dict[str, list[str]] = {}
    creates: list[tuple[str, list[str]]] = []
    for statement in TABLE_DDL:
        words = statement.split()
        if words[:2] == ["alter", "table"]:  # alter table T add column if not exists NAME TYPE
            added.setdefault(words[2], []).append(" ".join(words[-2:]))
        elif words[:2] == ["create", "table"]:
            head, body = statement.split("(", 1)
            columns = [line.strip().removesuffix(",") for line in body.rsplit(")", 1)[0].splitlines()]
            creates.append((head.split()[-1], [column for column in columns if column]))
    statements = [f"create schema if not exists {SCHEMA}"]
    for table, columns in creates:
        declared: dict[str, str] = {}
        for column in [*columns, *added.get(table, [])]:
            name, type_name = column.removesuffix(" not null").split()
            declared.setdefault(name, _SPARK_TYPES.get(type_name, type_name))
        listed = ", ".join(f"{name} {type_name}" for name, type_name in declared.items())
        statements.append(f"create table if not exists {table} ({listed}) using parquet")
    return [*statements, *VIEW_DDL]
