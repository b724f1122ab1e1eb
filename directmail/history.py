"""Contract 5: what was sent to whom, in the warehouse (`direct_mail.runs`, `.sends`, `.exclusions`).

`exclusions` (one row per targeted profile that was not sent, with its reason and detail) and the runs'
`exclusion_details`, `seed_rows` and `delivery_started_at` extend the contract; older warehouses gain them
on the next run.

Exactly once: before the first byte leaves, one transaction records the run `delivering` (with the files
it will put) and stages its sends and exclusions in `pending_sends` / `pending_exclusions`. After the
manifest lands, one transaction moves them into `sends` / `exclusions` and records `delivered`. A crash
in between leaves the run `delivering` with its rows pending, so the next run of that id can settle it
from what the destination holds, without the extract that produced them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from directmail.warehouse import Warehouse

SCHEMA = "direct_mail"
RUNS = f"{SCHEMA}.runs"
SENDS = f"{SCHEMA}.sends"
EXCLUSIONS = f"{SCHEMA}.exclusions"
PENDING_SENDS = f"{SCHEMA}.pending_sends"
PENDING_EXCLUSIONS = f"{SCHEMA}.pending_exclusions"
DELIVERING = "delivering"
DELIVERED = "delivered"
FAILED = "failed"
EMPTY = "empty"

DDL = [
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
    f"""create table if not exists {SENDS} (
        run_id varchar not null,
        campaign varchar not null,
        profile_id varchar not null,
        file_name varchar,
        is_holdout boolean not null,
        sent_at timestamp not null
    )""",
    f"""create table if not exists {EXCLUSIONS} (
        run_id varchar not null,
        campaign varchar not null,
        profile_id varchar not null,
        reason varchar not null,
        detail varchar,
        recorded_at timestamp not null
    )""",
    # A delivering run's rows, until its manifest lands (same columns as sends and exclusions).
    f"create table if not exists {PENDING_SENDS} as select * from {SENDS} limit 0",
    f"create table if not exists {PENDING_EXCLUSIONS} as select * from {EXCLUSIONS} limit 0",
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


_JSON_COLUMNS: dict[str, Any] = {"excluded": {}, "files": [], "step_seconds": {}, "exclusion_details": {}}


class History:
    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def ensure_tables(self) -> None:
        for statement in DDL:
            self.warehouse.execute(statement)

    def find(self, run_id: str) -> RunRecord | None:
        table = self.warehouse.query(f"select * from {RUNS} where run_id = ?", [run_id])
        return RunRecord.from_row(table.to_pylist()[0]) if table.num_rows else None

    def save_run(self, record: RunRecord) -> None:
        """Insert or replace the run's row (on its own: for runs that deliver nothing)."""
        with self.warehouse.transaction():
            self._save_run(record)

    def _save_run(self, record: RunRecord) -> None:
        self.warehouse.execute(f"delete from {RUNS} where run_id = ?", [record.run_id])
        self.warehouse.append(RUNS, pa.Table.from_pylist([record.as_row()]))

    def mark_delivering(self, record: RunRecord, sends_sql: str, exclusions_sql: str) -> None:
        """Before the first byte leaves: the run `delivering` with its planned files, its rows pending."""
        with self.warehouse.transaction():
            self._replace(PENDING_SENDS, record.run_id, sends_sql)
            self._replace(PENDING_EXCLUSIONS, record.run_id, exclusions_sql)
            self._save_run(record)

    def commit_delivered(self, record: RunRecord) -> None:
        """After the manifest landed: pending rows become sends and exclusions, the run `delivered`."""
        run_id = [record.run_id]
        with self.warehouse.transaction():
            for pending, final in ((PENDING_SENDS, SENDS), (PENDING_EXCLUSIONS, EXCLUSIONS)):
                self._replace(final, record.run_id, f"select * from {pending} where run_id = ?", run_id)
                self.warehouse.execute(f"delete from {pending} where run_id = ?", run_id)
            self._save_run(record)

    def record_empty(self, record: RunRecord, exclusions_sql: str) -> None:
        """A run with nothing to deliver: its row and why each targeted profile was not sent."""
        with self.warehouse.transaction():
            self._replace(EXCLUSIONS, record.run_id, exclusions_sql)
            self.warehouse.execute(f"delete from {SENDS} where run_id = ?", [record.run_id])
            self._save_run(record)

    def discard_pending(self, run_id: str) -> None:
        """A delivering attempt whose drop never landed: it is delivered again, with fresh rows."""
        with self.warehouse.transaction():
            for pending in (PENDING_SENDS, PENDING_EXCLUSIONS):
                self.warehouse.execute(f"delete from {pending} where run_id = ?", [run_id])

    def _replace(self, table: str, run_id: str, select_sql: str, params: list[Any] | None = None) -> None:
        """Replace the run's rows in `table` with those of `select_sql` (in the table's column order)."""
        self.warehouse.execute(f"delete from {table} where run_id = ?", [run_id])
        self.warehouse.execute(f"insert into {table} {select_sql}", params)

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
        return [RunRecord.from_row(row) for row in self.warehouse.query(sql, params).to_pylist()]

    def latest_delivery(self, campaign: str) -> RunRecord | None:
        """The campaign's latest run whose delivery started (its files may be at the destination)."""
        if not self.warehouse.relation_exists(RUNS):
            return None
        sql = (
            f"select * from {RUNS} where campaign = ? and delivery_started_at is not null "
            "order by delivery_started_at desc limit 1"
        )
        rows = self.warehouse.query(sql, [campaign]).to_pylist()
        return RunRecord.from_row(rows[0]) if rows else None

    def last_runs(self) -> dict[str, RunRecord]:
        last: dict[str, RunRecord] = {}
        for record in reversed(self.runs(limit=100_000)):
            last[record.campaign] = record
        return last
