"""Campaign runs on Spark deliver the same bytes as on DuckDB.

The sample written to a local Spark (one session for the module, in this process: the runner and dbt
share it) and the same sample in a DuckDB file: both sample campaigns run at the same run time with
`--target spark` and with the default target. The delivered files are byte for byte equal (and equal to
the pinned DuckDB files), and so are the history rows; a second run of a run id has nothing to do.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_project_files, copy_sample_project
from tests.test_postgres_runs import CAMPAIGNS, HISTORY, _sorted
from tests.test_sample_project import RUN_TIME, cli, landing_files, query
from tests.test_sample_targeting import SAMPLE_FILES_SHA256

pytest.importorskip("pyspark", reason="pyspark is not installed (uv sync --extra spark)")
pytest.importorskip("dbt.adapters.spark", reason="dbt-spark is not installed (uv sync --extra spark)")
if shutil.which("java") is None:
    pytest.skip("java is not installed (make test-servers)", allow_module_level=True)


@pytest.fixture(scope="module")
def on_spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    """The sample project with its `spark` target under it: the 2,000-profile sample and the seeds."""
    from directmail.builder import DbtProject
    from directmail.warehouse.spark_warehouse import spark_session
    from sampledata.generate import generate_spark
    from tests.test_spark_models import dbt_spark

    project = copy_project_files(tmp_path_factory.mktemp("spark-runs") / "project")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DIRECTMAIL_SPARK_DIR", str(project / "warehouse" / "spark"))
        env.delenv("DIRECTMAIL_WAREHOUSE", raising=False)
        session = spark_session(DbtProject(project, "spark").target_info(), project)
        generate_spark(2000, spark=session)
        dbt_spark(project, "seed")
        try:
            yield project, session
        finally:
            session.stop()  # one session per process: the next module's must be its own


def _spark_rows(session: Any, sql: str) -> list[tuple]:
    return [tuple(row) for row in session.sql(sql).collect()]


@pytest.mark.slow
def test_runs_on_spark_deliver_the_bytes_duckdb_delivers(on_spark, tmp_path: Path):
    project, session = on_spark
    on_duckdb = copy_sample_project(tmp_path / "duckdb")
    for campaign in CAMPAIGNS:
        duck = cli(on_duckdb, "run", campaign, "--run-time", RUN_TIME)
        assert duck.exit_code == 0, duck.output
        spark = cli(project, "--target", "spark", "run", campaign, "--run-time", RUN_TIME)
        assert spark.exit_code == 0, spark.output

    delivered = landing_files(project)
    assert delivered == landing_files(on_duckdb)
    assert {name: hashlib.sha256(data).hexdigest() for name, data in delivered.items()} == SAMPLE_FILES_SHA256

    for relation, columns in HISTORY.items():
        duck_rows = _sorted(query(on_duckdb, f"select {columns} from {relation}"))
        assert len(duck_rows) > 100, relation
        assert _sorted(_spark_rows(session, f"select {columns} from {relation}")) == duck_rows, relation

    again = cli(project, "--target", "spark", "run", "winter_catalog", "--run-time", RUN_TIME)
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output
    assert landing_files(project) == delivered

    report = cli(project, "--target", "spark", "report", "winter_catalog", "--json")
    assert report.exit_code == 0, report.output
    duck_report = cli(on_duckdb, "report", "winter_catalog", "--json")
    spark_run, duck_run = json.loads(report.output)["run"], json.loads(duck_report.output)["run"]
    assert spark_run["status"] == "delivered"
    for key in ("run_id", "targeted", "excluded", "exclusion_details", "holdout", "exported", "files"):
        assert spark_run[key] == duck_run[key], key
    # address validation ran on Spark: every collected key has its result
    [(collected, validated)] = _spark_rows(
        session,
        "select (select count(distinct address_key) from main.int_addresses_collected), "
        "(select count(*) from direct_mail.address_validations)",
    )
    assert collected == validated > 1000
