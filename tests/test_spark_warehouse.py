"""The Spark side of the warehouse interface, on a real local Spark session (one per module: a JVM start
costs seconds): the extract streamed in order over many part files, the same text and holdout as DuckDB,
code-point order, the append-only history's lifecycle and crashes, incremental address validation."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from directmail.address_validations import validate_addresses
from directmail.builder import RunnerCredentials, TargetInfo
from directmail.history import (
    DELIVERED,
    DELIVERING,
    EXCLUSIONS,
    RUN_VERSIONS,
    SENDS,
    History,
    RunRecord,
)
from directmail.textformat import LineEncoder
from directmail.warehouse.duckdb_warehouse import DuckDBWarehouse

if importlib.util.find_spec("pyspark") is None:
    pytest.skip("pyspark is not installed (uv sync --extra spark)", allow_module_level=True)
if shutil.which("java") is None:
    pytest.skip("no java on PATH (Spark needs Java 17: make test-servers)", allow_module_level=True)

from directmail.warehouse.spark_warehouse import SparkWarehouse

REPO = Path(__file__).resolve().parent.parent


def spark_target(directory: Path) -> TargetInfo:
    parameters = {
        "spark.master": "local[2]",
        "spark.sql.warehouse.dir": str(directory / "tables"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={directory / 'metastore_db'};create=true"
        ),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "8",
        # Small results stay in several sorted parts (not coalesced into one): order across parts is tested.
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
    }
    return TargetInfo(
        "spark", "spark", RunnerCredentials(connection={"method": "session", "parameters": parameters})
    )


@pytest.fixture(scope="module")
def spark(tmp_path_factory) -> Iterator[SparkWarehouse]:
    project = tmp_path_factory.mktemp("spark-project")
    warehouse = SparkWarehouse(spark_target(project / "warehouse" / "spark"), project)
    try:
        yield warehouse
    finally:
        # One session per process: the next module's session must be its own (its own metastore).
        warehouse._session.stop()


def test_a_metastore_open_in_another_process_is_refused_clearly(spark, tmp_path):
    """The embedded Derby admits one process: a second one is told so, not shown a Java stack."""
    project = spark._spool_root.parent.parent
    script = (
        "import sys; from pathlib import Path; "
        "from tests.test_spark_warehouse import spark_target; "
        "from directmail.warehouse.spark_warehouse import SparkWarehouse; "
        "from directmail.warehouse import WarehouseBusy\n"
        "try:\n"
        f"    SparkWarehouse(spark_target(Path({str(project / 'warehouse' / 'spark')!r})), Path({str(tmp_path)!r}))\n"
        "except WarehouseBusy as busy:\n"
        "    print('BUSY:', busy); sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert done.returncode == 3, done.stdout + done.stderr[-2000:]
    assert "BUSY: cannot open the Spark metastore of target spark: most likely another process" in done.stdout


def test_stream_reads_many_parts_in_order_and_removes_them(spark):
    spark.execute(
        "create or replace temporary view shuffled as "
        "select id, cast(id * 7919 % 100003 as bigint) as k, concat('row ', id) as label "
        "from range(0, 100003, 1, 7)"
    )
    reader = spark.stream("select k, label from shuffled order by k", batch_size=5000)
    parts = list(spark._spool_root.rglob("part-*"))
    assert len(parts) > 1, "the sorted result must span several part files for this test to mean anything"
    keys: list[int] = []
    for batch in reader:
        assert batch.num_rows <= 5000
        keys.extend(batch.column("k").to_pylist())
    assert keys == list(range(100003))
    assert list(spark._spool_root.rglob("*.parquet")) == []  # the spool is gone once read


def test_a_spool_a_crash_left_is_cleared_by_the_next_process(spark):
    from directmail.warehouse import spark_warehouse

    left = spark._spool_root / "spool-crashed" / "parts"
    left.mkdir(parents=True)
    (left / "part-00000-x.snappy.parquet").write_bytes(b"left by a crash")
    spark_warehouse._CLEARED_SPOOLS.clear()  # as in a new process (the session is reused: no JVM start)
    SparkWarehouse(spark.target, spark._spool_root.parent.parent)
    assert not (spark._spool_root / "spool-crashed").exists()


def test_stream_of_an_empty_result_has_its_schema(spark):
    table = spark.stream("select cast(id as string) as s from range(0) order by s").read_all()
    assert table.num_rows == 0 and table.column_names == ["s"]


VALUES = [  # (SQL type on DuckDB, on Spark, literals)
    (
        "varchar",
        "string",
        ["'plain'", "'a,b'", "'say \"hi\"'", "'two' || chr(10) || 'lines'", "'東京'", "null"],
    ),
    ("date", "date", ["date '2024-01-05'", "date '1999-12-31'", "null"]),
    (
        "timestamp",
        "timestamp",
        [
            "timestamp '2024-01-05 10:11:12'",
            "timestamp '2024-01-05 10:11:12.5'",
            "timestamp '2024-02-29 00:00:00.000001'",
        ],
    ),
    ("timestamp", "timestamp_ntz", ["timestamp '2024-01-05 10:11:12'", "timestamp '2024-01-05 23:59:59.25'"]),
    ("decimal(10,2)", "decimal(10,2)", ["1.5", "-0.25", "12345678.9", "0", "null"]),
    ("bigint", "bigint", ["0", "-7", "9007199254740993", "null"]),
    ("integer", "int", ["42", "-1"]),
    ("boolean", "boolean", ["true", "false", "null"]),
    ("double", "double", ["2.0", "0.5", "-3.0", "0.1", "123456789.0"]),
]


@pytest.mark.parametrize(("duck_type", "spark_type", "literals"), VALUES, ids=[v[1] for v in VALUES])
def test_text_is_byte_for_byte_duckdbs(spark, duck_type, spark_type, literals):
    with DuckDBWarehouse(":memory:") as duck:
        for literal in literals:
            duck_sql = f"select cast({literal} as {duck_type}) as v"
            spark_sql = f"select cast({literal.replace(' || ', ' || ')} as {spark_type}) as v"
            [(_, duck_kind)] = duck.describe(duck_sql)
            [(_, spark_kind)] = spark.describe(spark_sql)
            duck_text = duck.query(f"select {duck.dialect.as_text('v', duck_kind)} as t from ({duck_sql})")
            spark_text = spark.query(
                f"select {spark.dialect.as_text('v', spark_kind)} as t from ({spark_sql}) as s"
            )
            assert spark_text["t"][0].as_py() == duck_text["t"][0].as_py(), literal


TRICKY = [
    "plain",
    "",
    'say "hi"',
    "a,b",
    "a;b",
    "a|b",
    "tab\there",
    "two\nlines",
    "cr\rhere",
    "東京",
    "back\\slash",
    "it's",
]


@pytest.mark.parametrize(("separator", "newline"), [(",", "\n"), (";", "\r\n"), ("\t", "\n"), ("|", "\r\n")])
def test_lines_are_byte_for_byte_duckdbs(spark, separator, newline):
    encoder = LineEncoder(separator, newline, "utf-8")
    d = spark.dialect
    line = spark.query(f"select {d.text_line([d.literal(v) for v in TRICKY], separator, newline)} as line")
    assert line["line"][0].as_py().encode() == encoder.line(TRICKY)
    fixed = d.fixed_width_line(
        [d.literal("ab"), d.literal("東京"), d.literal("toolong")], [4, 3, 3], [False, True, False], "\r\n"
    )
    with DuckDBWarehouse(":memory:") as duck:
        dd = duck.dialect
        expected = dd.fixed_width_line(
            [dd.literal("ab"), dd.literal("東京"), dd.literal("toolong")],
            [4, 3, 3],
            [False, True, False],
            "\r\n",
        )
        assert (
            spark.query(f"select {fixed} as l")["l"][0].as_py()
            == duck.query(f"select {expected} as l")["l"][0].as_py()
        )


def test_holdout_buckets_and_text_keys_are_duckdbs(spark):
    keys = [f"winter_catalog:P{i:06d}" for i in range(2000)] + ["lapsed:東京", "x:é"]
    with DuckDBWarehouse(":memory:") as duck:
        duck.execute("create table keys (k varchar)")
        duck.append("keys", pa.table({"k": keys}))
        expected = duck.query(
            f"select k, {duck.dialect.holdout_bucket('k')} as b, {duck.dialect.text_key(['k', 'upper(k)'])} as h "
            "from keys order by k"
        ).to_pylist()
    spark.execute("create database if not exists test_data")
    spark.execute("drop table if exists test_data.keys")
    spark.execute("create table test_data.keys (k string) using parquet")
    spark.append("test_data.keys", pa.table({"k": keys}))
    d = spark.dialect
    got = spark.query(
        f"select k, {d.holdout_bucket('k')} as b, {d.text_key(['k', 'upper(k)'])} as h "
        f"from test_data.keys order by {d.code_point_order('k')}"
    ).to_pylist()
    assert got == expected


def test_text_orders_by_code_point(spark):
    values = ["b", "B", "a", "é", "z", "😀", "\uffff", "Z", "ä", "a b", "ab", ""]
    literals = ", ".join(f"({spark.dialect.literal(v)})" for v in values)
    spark.execute(f"create or replace temporary view words as select * from values {literals} as t(w)")
    ordered = spark.query(f"select w from words order by {spark.dialect.code_point_order('w')}")[
        "w"
    ].to_pylist()
    assert ordered == sorted(values)  # Python compares str by code point
    assert spark.dialect.literal("it's \\n") != "'it''s \\n'"
    assert (
        spark.query(f"select {spark.dialect.literal(chr(92) + 'n' + chr(39))} as s")["s"][0].as_py() == "\\n'"
    )


# -- the append-only history -----------------------------------------------------------------------------


def _record(run_id: str, attempt: int, status: str = "running", committed: int | None = None) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        campaign="winter",
        run_time=datetime(2026, 11, 1, 9),
        status=status,
        started_at=datetime(2026, 11, 1, 9, 0, 1),
        attempt=attempt,
        committed_attempt=committed,
        files=[{"name": "winter.csv", "rows": 3}],
    )


def _rows_sql(table: str, run_id: str, attempt: int, ids: list[str]) -> str:
    values = ", ".join(f"('{i}')" for i in ids) if ids else "('none')"
    where = "" if ids else " where false"
    if table == "sends":
        return (
            f"select '{run_id}', 'winter', id, 'winter.csv', false, timestamp '2026-11-01 09:00:02', {attempt} "
            f"from values {values} as t(id)"
        )
    return (
        f"select '{run_id}', 'winter', id, 'suppressed', 'list', timestamp '2026-11-01 09:00:02', {attempt} "
        f"from values {values} as t(id){where}"
    )


def _visible(spark, relation: str, run_id: str) -> list[str]:
    rows = spark.rows(f"select profile_id from {relation} where run_id = ? order by profile_id", [run_id])
    return [row["profile_id"] for row in rows]


def test_history_lifecycle_survives_crashes_without_reusing_attempts(spark):
    history = History(spark)
    assert history.append_only
    history.ensure_tables()
    history.ensure_tables()  # idempotent
    run_id = "winter@2026-11-01T09:00:00Z"
    assert history.next_attempt(run_id, None) == 1

    # Attempt 1 crashes after its reservation and part of its rows: nothing visible, number taken.
    first = _record(run_id, 1)
    history._reserve(first)
    spark.execute(f"insert into direct_mail.send_rows {_rows_sql('sends', run_id, 1, ['P1', 'P2'])}")
    assert history.find(run_id) is None  # the reservation is not a state of the run
    assert _visible(spark, SENDS, run_id) == []
    assert history.next_attempt(run_id, history.find(run_id)) == 2

    # Attempt 2: delivering (rows written, not visible), then a crash before delivered.
    second = _record(run_id, 2)
    second.status, second.delivery_started_at = DELIVERING, datetime(2026, 11, 1, 9, 0, 2)
    history = History(spark)  # a new process
    history.mark_delivering(
        second,
        _rows_sql("sends", run_id, 2, ["P1", "P2", "P3"]),
        _rows_sql("exclusions", run_id, 2, ["P9"]),
    )
    found = History(spark).find(run_id)
    assert found is not None and found.status == DELIVERING and found.may_have_landed and found.attempt == 2
    assert _visible(spark, SENDS, run_id) == [] and _visible(spark, EXCLUSIONS, run_id) == []

    # The next process settles it (its drop landed): attempt 2's rows, exactly, become visible.
    history = History(spark)
    assert history.next_attempt(run_id, found) == 3
    settled = found
    settled.status = DELIVERED
    history.commit_delivered(settled)
    assert _visible(spark, SENDS, run_id) == ["P1", "P2", "P3"]
    assert _visible(spark, EXCLUSIONS, run_id) == ["P9"]
    assert History(spark).find(run_id).status == DELIVERED  # type: ignore[union-attr]

    # A forced re-delivery (attempt 3) crashes mid-rows: still attempt 2's rows, still delivered.
    third = _record(run_id, 3, committed=2)
    history = History(spark)
    history._reserve(third)
    spark.execute(f"insert into direct_mail.send_rows {_rows_sql('sends', run_id, 3, ['P1'])}")
    after = History(spark).find(run_id)
    assert after is not None and after.status == DELIVERED and after.committed_attempt == 2
    assert _visible(spark, SENDS, run_id) == ["P1", "P2", "P3"]
    # … and the attempt after it gets a fresh number, so the stray row of attempt 3 never shows.
    fourth_attempt = History(spark).next_attempt(run_id, after)
    assert fourth_attempt == 4
    fourth = _record(run_id, 4, committed=2)
    fourth.status, fourth.delivery_started_at = DELIVERING, datetime(2026, 11, 1, 9, 5)
    history = History(spark)
    history.mark_delivering(
        fourth, _rows_sql("sends", run_id, 4, ["P2", "P4"]), _rows_sql("exclusions", run_id, 4, [])
    )
    fourth.status = DELIVERED
    history.commit_delivered(fourth)
    assert _visible(spark, SENDS, run_id) == ["P2", "P4"]
    assert _visible(spark, EXCLUSIONS, run_id) == []
    versions = spark.rows(
        f"select attempt, status from {RUN_VERSIONS} where run_id = ? order by version", [run_id]
    )
    reserved_attempts = [v["attempt"] for v in versions if v["status"] == "reserved"]
    assert reserved_attempts == sorted(set(reserved_attempts))  # no attempt reserved twice
    assert [r.run_id for r in History(spark).runs()] == [run_id]


def test_address_validations_are_incremental(spark):
    History(spark).ensure_tables()
    spark.execute("create database if not exists test_data")
    spark.execute("drop table if exists test_data.collected")
    spark.execute(
        "create table test_data.collected using parquet as select * from values "
        "('k1', '1 Main St', '', '10001', 'New York', 'NY', 'US'), "
        "('k2', '', '', '', '', '', 'US') "
        "as t(address_key, address_line_1, address_line_2, postal_code, city, region, country_code)"
    )
    first = validate_addresses(spark, "test_data.collected", "collected")
    assert first.validated == 2
    again = validate_addresses(spark, "test_data.collected", "collected")
    assert (again.validated, again.replaced) == (0, 0)
    spark.execute(
        "insert into test_data.collected values ('k3', '5 Elm St', '', '94105', 'San Francisco', 'CA', 'US')"
    )
    third = validate_addresses(spark, "test_data.collected", "collected")
    assert third.validated == 1
    everything = validate_addresses(spark, "test_data.collected", "collected", everything=True)
    assert (everything.validated, everything.replaced) == (3, 3)
    rows = spark.rows(
        "select address_key, is_valid_address from direct_mail.address_validations order by address_key"
    )
    assert [(r["address_key"], r["is_valid_address"]) for r in rows] == [
        ("k1", True),
        ("k2", False),
        ("k3", True),
    ]


# -- a whole extract, planned as the runner plans it -----------------------------------------------------


def _campaign_rows(count: int) -> pa.Table:
    """Profiles with households (shared addresses, twins), mixed-case and non-ASCII sort keys, NULLs."""
    import datetime as dt
    from decimal import Decimal

    cities = ["Zürich", "zug", "Århus", "Bern", "bern", "東京", "Éze", "Aarau"]
    rows: dict[str, list] = {k: [] for k in ("profile_id", "first_name", "city", "line_1", "postal_code")}
    rows |= {"country_code": [], "last_order": [], "value": [], "last_seen": []}
    for i in range(count):
        twin = i % 97 == 5  # the same columns as the row before: a household duplicate
        j = i - 1 if twin else i
        rows["profile_id"].append(f"P{i:05d}")
        rows["first_name"].append(["Ann", "ann", "Émile", "Bob", 'Zoë "Z"', "O'Neil, Jr"][j % 6])
        rows["city"].append(cities[j % len(cities)])
        rows["line_1"].append(f"{j % 700} Main St")  # every 700th profile shares an address
        rows["postal_code"].append(f"{1000 + j % 700}")
        rows["country_code"].append("CH")
        rows["last_order"].append(dt.date(2024, 1, 1) + dt.timedelta(days=j % 400))
        rows["value"].append(Decimal(j % 1000) / 4 if j % 11 else None)
        rows["last_seen"].append(
            dt.datetime(2025, 3, 1, 12) + dt.timedelta(seconds=j * 7, microseconds=j % 3)
        )
    return pa.table(rows).cast(
        pa.schema(
            [
                *(
                    pa.field(n, pa.string())
                    for n in ("profile_id", "first_name", "city", "line_1", "postal_code")
                ),
                pa.field("country_code", pa.string()),
                pa.field("last_order", pa.date32()),
                pa.field("value", pa.decimal128(10, 2)),
                pa.field("last_seen", pa.timestamp("us")),
            ]
        )
    )


def _extract(warehouse, relation: str) -> tuple[bytes, dict, list]:
    from directmail.campaign import AddressColumns, Campaign, CampaignSpec
    from directmail.extract import Rules, drop_staging, plan_extract, reason_summary, stream_rows

    spec = CampaignSpec(
        configuration="standard",
        file_name="test.csv",
        sort_by=["city", "last_order desc", "first_name"],
        holdout_percent=10,
        household=True,
        household_order=["value desc"],
        address_columns=AddressColumns(
            lines=["line_1"], postal_code="postal_code", city="city", country="country_code"
        ),
    )
    campaign = Campaign("test", spec, "model.p.test", relation, "models/test.yml")
    types = warehouse.describe(f"select * from {relation}")
    plan, sql = plan_extract(warehouse, campaign, types, Rules(), "extract__test")
    drop_staging(warehouse, plan)
    warehouse.execute(sql)
    counts, _ = reason_summary(warehouse, plan)
    plan.exported = counts["exported"]
    lines = b"".join(
        line.encode()
        for batch in stream_rows(warehouse, plan, LineEncoder(",", "\n", "utf-8"), 1000)
        for line in batch.column("_dm_line").to_pylist()
    )
    excluded = warehouse.query(
        f"select _dm_identity as id, _dm_reason as reason, _dm_detail as detail from {plan.staging_table} "
        "where _dm_reason <> 'exported'"
    )
    drop_staging(warehouse, plan)
    return lines, counts, sorted(excluded.to_pylist(), key=lambda r: r["id"])


def test_a_planned_extract_gives_duckdbs_bytes_and_reasons(spark):
    rows = _campaign_rows(3000)
    with DuckDBWarehouse(":memory:") as duck:
        duck.execute(
            "create table campaign (profile_id varchar, first_name varchar, city varchar, line_1 varchar, "
            "postal_code varchar, country_code varchar, last_order date, value decimal(10,2), "
            "last_seen timestamp)"
        )
        duck.append("campaign", rows)
        expected = _extract(duck, "campaign")
    spark.execute("create database if not exists test_data")
    spark.execute("drop table if exists test_data.campaign")
    spark.execute(
        "create table test_data.campaign (profile_id string, first_name string, city string, line_1 string, "
        "postal_code string, country_code string, last_order date, value decimal(10,2), last_seen timestamp) "
        "using parquet"
    )
    spark.append("test_data.campaign", rows)
    got = _extract(spark, "test_data.campaign")
    assert got[1] == expected[1]
    assert {"holdout", "household_duplicate"} <= {r for r, n in expected[1].items() if n}
    assert got[2] == expected[2]
    assert got[0] == expected[0]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "latin-1"])
def test_value_checks_in_spark_sql_fail_the_rows_python_fails(spark, encoding):
    """The Spark dialect's condition (`rlike` with Java's regex, char_length) agrees with Python's on the
    same awkward values (a line feed after the country code, past U+FFFF, outside cp1252/latin-1)."""
    import pyarrow as pa

    from directmail.valuechecks import value_checks
    from tests.test_value_checks import LABELS, VALUES, campaign

    widths = {"line1": 10, "city": 10, "country": 2, "note": 40}
    checks = value_checks(campaign({"max_lengths": {"line1": 9}}), LABELS, encoding, widths)
    columns = [f"c{i}" for i in range(len(LABELS))]
    table = pa.table(
        {"n": list(range(len(VALUES))), **{c: [row[i] for row in VALUES] for i, c in enumerate(columns)}}
    )
    spark._session.createDataFrame(table).createOrReplaceTempView("checked")
    by_sql = {
        row["n"]
        for row in spark.rows(f"select n from checked where {checks.failing_sql(spark.dialect, columns)}")
    }
    assert by_sql == {n for n, values in enumerate(VALUES) if checks.row_fails(values)}
    assert {1, 2, 3, 4, 10} <= by_sql
