"""What the tests of the sample project on other engines share: the models they compare, dbt run on the
DuckDB reference project, and rows normalized so that two adapters' drivers compare equal."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

DBT = str(Path(sys.executable).with_name("dbt"))
RUN_TIME = "2026-11-02 09:00:00"
VARS = json.dumps({"run_time": RUN_TIME})
# Built on every target by `--exclude stg_direct_mail__address_validations+`, compared row for row.
SQL_MODELS = [
    "stg_crm__profiles",
    "stg_crm__consents",
    "stg_crm__orders",
    "stg_catalog__offers",
    "stg_suppression__entries",
    "int_addresses_collected",
    "int_orders_summarized",
    "int_profiles_offered",
]
# Downstream of address validation: built over the validated addresses copied from DuckDB.
DOWNSTREAM_MODELS = ["int_profiles_addressed", "int_profiles_qualified", "int_suppressions_keyed"]
CAMPAIGNS = ["winter_catalog", "lapsed_postcard"]
VALIDATIONS = "stg_direct_mail__address_validations"  # the models read the runner's results through it
# The sample CRM's load time (sampledata/generate.py): when each sample was written, so two samples differ in it.
LOAD_TIME = "_loaded_at"


def dbt(project: Path, env: dict[str, str], *args: str) -> list[dict]:
    """Run dbt in the project; return run_results.json's results (fails the test with dbt's output)."""
    result = subprocess.run(
        [DBT, *args, "--project-dir", str(project), "--profiles-dir", str(project), "--vars", VARS],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return json.loads((project / "target" / "run_results.json").read_text())["results"]


def build_duckdb_reference(project: Path, env: dict[str, str]) -> list[dict]:
    """The DuckDB project as a run leaves it: addresses validated by the runner, then `dbt build`."""
    validated = subprocess.run(  # the default target: the DuckDB file
        [str(Path(sys.executable).with_name("directmail")), "addresses", "validate"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    return dbt(project, env, "build")


def _value(value):
    """One value as every adapter's driver agrees on it (numeric scale, float noise and a timestamp's
    time zone aside: an aware timestamp is compared as its UTC wall time, as DuckDB's naive ones)."""
    if isinstance(value, float):
        return Decimal(repr(round(value, 6))).normalize()
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    assert value is None or isinstance(value, str | int | bool | date | datetime), type(value)
    return value


def normalized_rows(rows: list[tuple]) -> list[tuple]:
    """The rows with comparable values, in one order whatever the engine returned."""
    normalized = [tuple(_value(v) for v in row) for row in rows]
    return sorted(normalized, key=lambda row: tuple((v is None, str(v)) for v in row))


def duckdb_rows(project: Path, relation: str) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(project / "warehouse" / "directmail.duckdb"), read_only=True) as con:
        cursor = con.execute(f"select * from {relation}")
        return [c[0] for c in cursor.description], normalized_rows(cursor.fetchall())


def without_load_time(columns: list[str], rows: list[tuple]) -> tuple[list[str], list[tuple]]:
    """A raw_crm table's columns and rows without `_loaded_at`, the column two samples written at
    different times differ in, once it is checked: one value for every row, the time of a load just made."""
    assert LOAD_TIME in columns, columns
    at = columns.index(LOAD_TIME)
    stamps = {row[at] for row in rows}
    assert len(stamps) == 1, stamps
    (stamp,) = stamps
    assert timedelta(0) <= datetime.now(UTC).replace(tzinfo=None) - stamp < timedelta(hours=1), stamp
    return [c for c in columns if c != LOAD_TIME], normalized_rows([row[:at] + row[at + 1 :] for row in rows])


def model_results(results: list[dict]) -> dict[str, list[str]]:
    """A build's statuses by kind of node (model, seed, test, unit_test)."""
    kinds: dict[str, list[str]] = {}
    for result in results:
        kinds.setdefault(result["unique_id"].split(".")[0], []).append(result["status"])
    return kinds
