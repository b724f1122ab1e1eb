"""The sample project on Spark: the sample CRM, the seeds and every model with its data and unit tests
build on the `spark` target (dbt-spark's `session` method, a local Spark), and give DuckDB's rows.

One Spark session (one JVM) for the module: the test starts it from profiles.yml's `spark` target and
runs dbt in this process, whose `session` method finds the same session (`getOrCreate`); the embedded
Derby metastore admits one process. Address validation is the runner's: DuckDB's validation results are
copied into the Spark table, as the runner would have written them, and a few history rows are written
on both so that the reporting models have something to count.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sampledata.generate import generate_spark, spark_session
from tests.conftest import REPO, copy_project_files, copy_sample_project
from tests.model_rows import (
    CAMPAIGNS,
    DOWNSTREAM_MODELS,
    SQL_MODELS,
    VARS,
    build_duckdb_reference,
    duckdb_rows,
    model_results,
    normalized_rows,
    without_load_time,
)

pytest.importorskip("pyspark", reason="pyspark is not installed (uv sync --extra spark)")
pytest.importorskip("dbt.adapters.spark", reason="dbt-spark is not installed (uv sync --extra spark)")
if shutil.which("java") is None:
    pytest.skip("java is not installed (make test-servers)", allow_module_level=True)

REPORTS = ["campaign_exclusions", "campaign_return_rates"]
HISTORY_MODELS = [
    "stg_direct_mail__runs",
    "stg_direct_mail__sends",
    "stg_direct_mail__exclusions",
    "stg_direct_mail__returns",
]
# The same rows written into the history on both engines (SQL both accept): a delivered run with
# sends, a held-out profile, exclusions and returns, and a failed run the reports leave out.
HISTORY_ROWS = [
    "insert into direct_mail.runs (run_id, campaign, run_time, status, targeted, exported, holdout,"
    " duplicates_removed, seed_rows, configuration, attempt, committed_attempt) values"
    " ('winter_catalog@2026-10-01T09:00:00Z', 'winter_catalog', timestamp '2026-10-01 09:00:00',"
    " 'delivered', 7, 4, 1, 0, 0, 'default', 1, 1),"
    " ('winter_catalog@2026-10-08T09:00:00Z', 'winter_catalog', timestamp '2026-10-08 09:00:00',"
    " 'failed', 3, 0, 0, 0, 0, 'default', 1, null)",
    "insert into direct_mail.send_rows (run_id, campaign, profile_id, file_name, is_holdout, sent_at,"
    " attempt) values"
    " ('winter_catalog@2026-10-01T09:00:00Z', 'winter_catalog', 'P00000001', 'w.csv', false,"
    " timestamp '2026-10-01 09:05:00', 1),"
    " ('winter_catalog@2026-10-01T09:00:00Z', 'winter_catalog', 'P00000002', 'w.csv', false,"
    " timestamp '2026-10-01 09:05:00', 1),"
    " ('winter_catalog@2026-10-01T09:00:00Z', 'winter_catalog', 'P00000003', 'w.csv', false,"
    " timestamp '2026-10-01 09:05:00', 1),"
    " ('winter_catalog@2026-10-01T09:00:00Z', 'winter_catalog', 'P00000004', null, true,"
    " timestamp '2026-10-01 09:05:00', 1)",
    "insert into direct_mail.exclusion_rows (run_id, campaign, profile_id, reason, detail, recorded_at,"
    " attempt) values"
    " ('winter_catalog@2026-10-01T09:00:00Z', 'winter_catalog', 'P00000005', 'no_postal_consent', null,"
    " timestamp '2026-10-01 09:05:00', 1),"
    " ('winter_catalog@2026-10-01T09:00:00Z', 'winter_catalog', 'P00000006', 'invalid_address',"
    " 'postal_code:invalid', timestamp '2026-10-01 09:05:00', 1),"
    " ('winter_catalog@2026-10-01T09:00:00Z', 'winter_catalog', 'P00000007', 'invalid_address',"
    " 'city:required', timestamp '2026-10-01 09:05:00', 1)",
    "insert into direct_mail.returns (identity, reason, returned_at, source_file, source_sha256,"
    " source_line, ingested_at) values"
    " ('P00000001', 'moved', timestamp '2026-10-20 00:00:00', 'r.csv', 'ab', 2,"
    " timestamp '2026-10-21 08:00:00'),"
    " ('P00000001', 'deceased', timestamp '2026-10-20 00:00:00', 'r.csv', 'ab', 3,"
    " timestamp '2026-10-21 08:00:00'),"
    " ('P00000002', 'undeliverable', timestamp '2026-10-22 00:00:00', 'r.csv', 'ab', 4,"
    " timestamp '2026-10-21 08:00:00')",
]


@pytest.fixture(scope="module")
def spark_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any, float]]:
    """A copy of the sample project whose `spark` target keeps its tables and metastore under it, and
    the Spark session of that target (with the seconds it took to start)."""
    project = copy_project_files(tmp_path_factory.mktemp("spark") / "project")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DIRECTMAIL_SPARK_DIR", str(project / "warehouse" / "spark"))
        env.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        env.delenv("DIRECTMAIL_WAREHOUSE", raising=False)
        started = time.perf_counter()
        spark = spark_session(project)
        spark.sparkContext.setLogLevel("ERROR")
        try:
            yield project, spark, time.perf_counter() - started
        finally:
            spark.stop()


def dbt_spark(project: Path, *args: str) -> list[dict]:
    """dbt on the `spark` target in this process (the module's Spark session); run_results' results."""
    from dbt.cli.main import dbtRunner

    with contextlib.chdir(project):
        result = dbtRunner().invoke(
            [
                *args,
                "--target",
                "spark",
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
                "--vars",
                VARS,
                "--log-path",
                str(project / "logs"),
            ]
        )
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    failed = [
        (r["unique_id"], r["status"], r["message"]) for r in results if r["status"] not in ("success", "pass")
    ]
    assert result.success, (result.exception, failed)
    return results


def spark_rows(spark: Any, relation: str) -> tuple[list[str], list[tuple]]:
    frame = spark.table(relation)
    table = frame.toArrow()  # timestamps come back aware (UTC); DuckDB's are naive UTC
    return frame.columns, normalized_rows([tuple(row.values()) for row in table.to_pylist()])


def test_sample_refuses_a_duckdb_file_for_spark():
    refused = subprocess.run(
        [sys.executable, "-m", "sampledata.generate", "--target", "spark", "--database", "x.duckdb"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "--database names a DuckDB file; --target spark writes where" in refused.stderr


def test_sample_refuses_a_metastore_another_process_has(tmp_path: Path):
    """Derby locks dbex.lck while it has the database booted; a second process is told so up front."""
    metastore = tmp_path / "spark" / "metastore_db"
    metastore.mkdir(parents=True)
    (metastore / "dbex.lck").write_bytes(b"")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'r+b'); fcntl.lockf(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); time.sleep(60)",
            str(metastore / "dbex.lck"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        refused = subprocess.run(
            [sys.executable, "-m", "sampledata.generate", "--target", "spark", "--profiles", "10"],
            cwd=REPO,
            env={**os.environ, "DIRECTMAIL_SPARK_DIR": str(tmp_path / "spark")},
            capture_output=True,
            text=True,
        )
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"sample to spark: the metastore {metastore} is in use by another process (its embedded Derby "
        "admits one): let it finish, or set DIRECTMAIL_SPARK_DIR to another folder"
    )
    assert not (tmp_path / "spark" / "tables").exists()


@pytest.mark.slow
def test_models_build_on_spark_and_match_duckdb(spark_project, tmp_path: Path):
    on_spark, spark, started = spark_project
    env = {key: value for key, value in os.environ.items() if key != "DIRECTMAIL_WAREHOUSE"}

    # The reference: the DuckDB sample with the same history rows, validated and built as a run does.
    on_duckdb = copy_sample_project(tmp_path / "duckdb")
    with duckdb.connect(str(on_duckdb / "warehouse" / "directmail.duckdb")) as con:
        for statement in HISTORY_ROWS:
            con.execute(statement)
    build_duckdb_reference(on_duckdb, env)

    timings = {"Spark session start": started}
    clock = time.perf_counter()
    counts = generate_spark(2000, spark=spark)
    timings["sample"] = time.perf_counter() - clock
    assert counts == {
        "profiles": 2000,
        "consents": 3894,
        "orders": len(duckdb_rows(on_duckdb, "raw_crm.orders")[1]),
    }
    for statement in HISTORY_ROWS:  # on Spark a run's row is a version in run_versions (runs is a view)
        spark.sql(statement.replace("direct_mail.runs (", "direct_mail.run_versions ("))
    with duckdb.connect(str(on_duckdb / "warehouse" / "directmail.duckdb"), read_only=True) as con:
        validations = con.sql("select * from direct_mail.address_validations").to_arrow_table()
    spark.createDataFrame(validations).write.insertInto("direct_mail.address_validation_rows")

    clock = time.perf_counter()
    seeds = dbt_spark(on_spark, "seed")
    timings["dbt seed"] = time.perf_counter() - clock
    assert len(seeds) == 6 and {r["status"] for r in seeds} == {"success"}
    clock = time.perf_counter()
    kinds = model_results(dbt_spark(on_spark, "build"))
    timings["dbt build"] = time.perf_counter() - clock
    print(
        "Spark, 2,000 profiles: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in timings.items())
    )
    assert set(kinds) == {"model", "seed", "test", "unit_test"}
    models = [*SQL_MODELS, *DOWNSTREAM_MODELS, *CAMPAIGNS, *HISTORY_MODELS, *REPORTS]
    assert len(kinds["model"]) == len(models) + 1  # + the address validations' staging
    assert len(kinds["unit_test"]) >= 7 and set(kinds["unit_test"]) == {"pass"}
    assert len(kinds["test"]) >= 90 and set(kinds["test"]) == {"pass"}

    seeds_and_crm = [*(r["unique_id"].split(".")[-1] for r in seeds), *(f"raw_crm.{t}" for t in counts)]
    for model in [*models, *seeds_and_crm]:
        relation = model if "." in model else f"main.{model}"
        duck_columns, duck = duckdb_rows(on_duckdb, relation)
        spark_columns, on_spark_rows = spark_rows(spark, relation)
        if relation.startswith("raw_crm."):  # the same rows, written at another time
            duck_columns, duck = without_load_time(duck_columns, duck)
            spark_columns, on_spark_rows = without_load_time(spark_columns, on_spark_rows)
        assert spark_columns == duck_columns, relation
        assert len(on_spark_rows) == len(duck) > 0, relation
        assert on_spark_rows == duck, relation
    # the md5 address key is DuckDB's hex: the validation results carry over
    _, keys = spark_rows(spark, "main.int_addresses_collected")
    assert all(len(key) == 32 for key, *_ in keys)
    # the mail house's labels keep their case and spaces; greetings in the profile's language
    columns, postcards = spark_rows(spark, "main.lapsed_postcard")
    assert columns[:3] == ["profile_id", "Greeting", "Name"] and "Postal Code" in columns
    assert {row[1].split(" ")[0] for row in postcards} >= {"Bonjour", "Hallo", "Dear"}
    _, rates = spark_rows(spark, "main.campaign_return_rates")
    assert [row[3:] for row in rates] == [(3, 2, Decimal("66.67"), 1, 0, 1, 0)]

    # A new sample over the built project: tables replaced (dbt's views on them kept), history emptied.
    generate_spark(1000, spark=spark)
    assert spark.sql("select count(*) from main.stg_crm__profiles").collect()[0][0] == 1000
    assert spark.sql("select count(*) from direct_mail.runs").collect()[0][0] == 0
