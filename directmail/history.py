"""Contract 5: what was sent to whom, in the warehouse (`direct_mail.runs`, `.sends`, `.exclusions`).

`exclusions` (one row per targeted profile that was not sent, with its reason and detail) and the runs'
`exclusion_details` and `seed_rows` extend the contract; older warehouses gain them on the next run.
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
DELIVERED = "delivered"

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
        self.warehouse.execute(f"delete from {RUNS} where run_id = ?", [record.run_id])
        self.warehouse.append(RUNS, pa.Table.from_pylist([record.as_row()]))

    def replace_sends(self, run_id: str, select_sql: str) -> None:
        """Replace the run's sends with the rows of `select_sql` (already in the sends column order)."""
        self.warehouse.execute(f"delete from {SENDS} where run_id = ?", [run_id])
        self.warehouse.execute(f"insert into {SENDS} {select_sql}")

    def replace_exclusions(self, run_id: str, select_sql: str) -> None:
        """Replace the run's exclusions with the rows of `select_sql` (in the exclusions column order)."""
        self.warehouse.execute(f"delete from {EXCLUSIONS} where run_id = ?", [run_id])
        self.warehouse.execute(f"insert into {EXCLUSIONS} {select_sql}")

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

    def last_runs(self) -> dict[str, RunRecord]:
        last: dict[str, RunRecord] = {}
        for record in reversed(self.runs(limit=100_000)):
            last[record.campaign] = record
        return last
