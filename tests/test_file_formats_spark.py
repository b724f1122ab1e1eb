"""`date_format`, `timestamp_format`, `decimal_separator` and `compression: zip` on Spark: the text of every
pattern is DuckDB's, and a run delivers the bytes a DuckDB run delivers (tests/test_file_formats.py has
the expected bytes). Skipped without the extra `spark` (CI installs it)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator

import pytest

from directmail.valueformats import ValueFormats, pattern_problem
from directmail.warehouse.duckdb_warehouse import DuckDBWarehouse
from tests.test_file_formats import FRENCH, META, MOMENTS, PATTERNS, TYPED_ROWS

if importlib.util.find_spec("pyspark") is None:
    pytest.skip("pyspark is not installed (uv sync --extra spark)", allow_module_level=True)
if shutil.which("java") is None:
    pytest.skip("no java on PATH (Spark needs Java 17: make test-servers)", allow_module_level=True)

from directmail.warehouse.spark_warehouse import SparkWarehouse
from tests.test_spark_warehouse import spark_target

TYPED = [  # (DuckDB type, Spark type, literals)
    ("date", "date", ["date '2024-01-05'", "date '1999-12-31'", "null"]),
    ("timestamp", "timestamp", [f"timestamp '{m.isoformat(sep=' ')}'" for m in MOMENTS]),
    ("timestamp", "timestamp_ntz", [f"timestamp '{m.isoformat(sep=' ')}'" for m in MOMENTS[:1]]),
    ("decimal(10,2)", "decimal(10,2)", ["12.5", "-1234.05", "0", "null"]),
    ("double", "double", ["2.5", "-0.1", "3.0"]),
    ("integer", "int", ["-12"]),
]


@pytest.fixture(scope="module")
def spark(tmp_path_factory) -> Iterator[SparkWarehouse]:
    project = tmp_path_factory.mktemp("spark-formats")
    warehouse = SparkWarehouse(spark_target(project / "warehouse" / "spark"), project)
    try:
        yield warehouse
    finally:
        warehouse._session.stop()  # one session per process: the next module's must be its own


def test_spark_writes_every_pattern_as_duckdb_does(spark):
    """Every pattern of every typed value, as the columns of one query on each engine."""
    with DuckDBWarehouse(":memory:") as duck:
        kinds = [
            (
                duck.describe(f"select cast(null as {d}) as v")[0][1],
                spark.describe(f"select cast(null as {s}) as v")[0][1],
            )
            for d, s, _ in TYPED
        ]
        duck_columns, spark_columns = [], []
        for pattern in PATTERNS:
            if pattern_problem(pattern, dates_only=False):
                continue
            date_format = pattern if not pattern_problem(pattern, dates_only=True) else "%d/%m/%Y"
            formats = ValueFormats(date_format, pattern, ",")
            for (duck_type, spark_type, literals), (duck_kind, spark_kind) in zip(TYPED, kinds, strict=True):
                for literal in literals:
                    duck_columns.append(
                        duck.dialect.as_text(f"cast({literal} as {duck_type})", duck_kind, formats)
                    )
                    spark_columns.append(
                        spark.dialect.as_text(f"cast({literal} as {spark_type})", spark_kind, formats)
                    )
        select = "select " + ", ".join(f"{c} as c{i}" for i, c in enumerate(duck_columns))
        expected = duck.query(select).to_pylist()[0]
        written = spark.query("select " + ", ".join(f"{c} as c{i}" for i, c in enumerate(spark_columns)))
        assert written.to_pylist()[0] == expected
        assert len(expected) > 200 and "31/12/1999" in expected.values()


def test_a_run_on_spark_delivers_the_bytes_duckdb_delivers(kit, spark):
    from directmail.pipeline import CampaignRun, RunOptions, parse_run_time
    from tests.runner_kit import RUN_TIME

    kit.sql(TYPED_ROWS)
    configuration = {
        "format": "delimited",
        "separator": ";",
        **FRENCH,
        "compression": "zip",
        "split_threshold": 2,
    }
    configuration["timestamp_format"] = "%d/%m/%Y %H:%M"
    kit.run(kit.project(META, configuration))
    on_duckdb = kit.landing()
    shutil.rmtree(kit.directory / "landing")

    columns = kit.sql("describe campaign")
    spark_types = {"VARCHAR": "string", "TIMESTAMP WITH TIME ZONE": "timestamp"}
    declared = ", ".join(f"`{name}` {spark_types.get(kind, kind.lower())}" for name, kind, *_ in columns)
    rows = kit.sql("select * from campaign")
    kit.sql("drop table campaign")  # the run reads Spark's only
    spark.execute("create database if not exists main")
    spark.execute("drop table if exists main.campaign")
    spark.execute("drop table if exists main.consents")
    spark.execute(f"create table main.campaign ({declared}) using parquet")
    spark.execute(
        "create table main.consents (profile_id string, marketing_action string, consent_value string)"
    )
    values = ", ".join(
        "("
        + ", ".join(
            "null" if v is None else f"cast({spark.dialect.literal(str(v))} as {kind})"
            for v, kind in zip(row, [spark_types.get(k, k.lower()) for _, k, *_ in columns], strict=True)
        )
        + ")"
        for row in rows
    )
    spark.execute(f"insert into main.campaign values {values}")
    project = kit.project(META, configuration)
    project.dbt._target_info = spark.target
    CampaignRun(project, "campaign", RunOptions(parse_run_time(RUN_TIME), skip_build=True)).execute()
    assert kit.landing() == on_duckdb
    assert len(on_duckdb) == 5
