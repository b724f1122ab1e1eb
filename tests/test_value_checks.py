"""The value checks' three spellings agree: the warehouse's SQL condition (which lets a clean run skip
pandera), Python's (seed rows) and the pandera schema (which names the failures) fail the same rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from directmail.campaign import Campaign, parse_campaign_spec
from directmail.extract import IDENTITY, ROW
from directmail.schema import ExtractValidator
from directmail.valuechecks import value_checks
from directmail.warehouse.duckdb_warehouse import DuckDBDialect

LABELS = ["line1", "city", "country", "note"]
VALUES = [
    ["1 Main St", "Paris", "FR", "ok"],
    ["", "Paris", "FR", "empty required field"],
    ["1 Main St", "Paris", "fr", "lower-case country"],
    ["1 Main St", "Paris", "FRA", "three letters"],
    ["1 Main St", "Paris", "FR\n", "country with a line feed"],
    ["1 Main St", "東京", "JP", "not in cp1252"],
    ["1 Main St", "Łódź", "PL", "not in latin-1"],
    ["1 Main St", "Zoé € ‰", "FR", "cp1252 yes, latin-1 no"],
    ["1 Main St", "Paris 😀", "FR", "past U+FFFF"],
    ["1 Main Street, flat 2", "Paris", "FR", "longer than 12"],
    ["1\r\nMain", "Paris", "FR", "line break"],
    ["1234567890", "Paris", "FR", "exactly the width"],
    ["1 Main St", "Paris", "FR", "ÿ" + "x" * 2 + chr(0x7F)],
]


def campaign(meta: dict) -> Campaign:
    spec, findings = parse_campaign_spec(
        "c",
        {
            "configuration": "test",
            "file_name": "c.csv",
            "address_columns": {
                "lines": ["line1"],
                "postal_code": "city",
                "city": "city",
                "country": "country",
            },
            **meta,
        },
        "models/c.yml",
    )
    assert not findings, findings
    return Campaign("c", spec, "model.test.c", "main.c", "models/c.yml")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
@pytest.mark.parametrize(
    ("meta", "widths"),
    [
        ({}, None),
        ({"max_lengths": {"line1": 12}}, None),
        ({"max_lengths": {"line1": 30}}, {"line1": 10, "city": 10, "country": 2, "note": 40}),
        ({"max_lengths": {"line1": 5}}, {"line1": 10, "city": 10, "country": 2, "note": 40}),
    ],
)
def test_sql_python_and_pandera_fail_the_same_rows(encoding, meta, widths, monkeypatch):
    monkeypatch.setattr("directmail.schema.MAX_REPORTED_FAILURES", 1000)  # every failure listed
    chosen = campaign(meta)
    checks = value_checks(chosen, LABELS, encoding, widths)
    con = duckdb.connect()
    columns = ", ".join(f"c{i}" for i in range(len(LABELS)))
    con.execute(f"create table t (n integer, {', '.join(f'c{i} varchar' for i in range(len(LABELS)))})")
    con.executemany(
        f"insert into t values (?, {', '.join('?' * len(LABELS))})", [[n, *v] for n, v in enumerate(VALUES)]
    )
    condition = checks.failing_sql(DuckDBDialect(), [f"c{i}" for i in range(len(LABELS))])
    by_sql = {n for (n,) in con.execute(f"select n from t where {condition}").fetchall()}
    assert con.execute(f"select count(*) from (select {columns} from t)").fetchone() == (len(VALUES),)

    by_python = {n for n, values in enumerate(VALUES) if checks.row_fails(values)}

    validator = ExtractValidator(chosen, LABELS, encoding, widths)
    batch = pa.RecordBatch.from_pydict(
        {
            ROW: list(range(len(VALUES))),
            IDENTITY: [str(n) for n in range(len(VALUES))],
            **{label: [row[i] for row in VALUES] for i, label in enumerate(LABELS)},
        }
    )
    validator.validate(batch)
    by_pandera = {failure.row for failure in validator.failures}
    assert validator.failure_count == len(validator.failures)

    assert by_sql == by_python == by_pandera
    assert {1, 2, 3, 4} <= by_sql
    assert (0 in by_sql) == (meta.get("max_lengths", {}).get("line1") == 5)


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "latin-1"])
def test_postgresql_spelling_fails_the_same_rows(postgres, encoding):
    """The PostgreSQL dialect's condition (`~`, char_length) agrees with Python's on the same values."""
    import adbc_driver_postgresql.dbapi as adbc

    from directmail.warehouse.postgres_warehouse import PostgresDialect

    widths = {"line1": 10, "city": 10, "country": 2, "note": 40}
    checks = value_checks(campaign({"max_lengths": {"line1": 9}}), LABELS, encoding, widths)
    table = pa.table(
        {"n": list(range(len(VALUES))), **{f"c{i}": [row[i] for row in VALUES] for i in range(len(LABELS))}}
    )
    condition = checks.failing_sql(PostgresDialect(), [f"c{i}" for i in range(len(LABELS))])
    with adbc.connect(postgres.uri) as con, con.cursor() as cursor:
        cursor.adbc_ingest(f"checked_{encoding.replace('-', '')}", table, mode="replace")
        cursor.execute(f"select n from checked_{encoding.replace('-', '')} where {condition}")
        by_sql = {n for (n,) in cursor.fetchall()}
    assert by_sql == {n for n, values in enumerate(VALUES) if checks.row_fails(values)}
    assert {1, 2, 3, 4, 10} <= by_sql


def test_a_clean_run_never_loads_pandera_and_a_failing_one_names_the_value(tmp_path):
    """The warehouse proves a clean extract clean: pandera, pandas and polars stay unloaded."""
    script = f"""
import sys
from pathlib import Path
from directmail.errors import ExtractInvalid
from tests.runner_kit import Kit
kit = Kit(Path({str(tmp_path)!r}))
kit.rows(1000)
kit.run(kit.project({{"file_name": "a.csv", "sort_by": ["profile_id"], "max_lengths": {{"name": 20}}}}))
print(sorted(name for name in ("pandera", "pandas", "polars") if name in sys.modules))
try:
    kit.run(kit.project({{"file_name": "b.csv", "sort_by": ["profile_id"], "max_lengths": {{"name": 7}}}}), force=True)
except ExtractInvalid as exc:
    print(str(exc).splitlines()[:2])
"""
    repository = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], cwd=repository, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[]",
        "['900 value(s) failed validation; nothing was delivered:', "
        "\"  row 101 (identity P000000100), column 'name': 8 characters, more than 7\"]",
    ]
    assert (
        (tmp_path / "landing" / "a.csv").read_bytes().startswith(b"name,street,country_code\nName 0,0 Mail")
    )
    assert not (tmp_path / "landing" / "b.csv").exists()
