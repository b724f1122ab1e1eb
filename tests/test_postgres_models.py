"""The sample project on PostgreSQL: the sample CRM, the seeds and every SQL model with its data and unit
tests build on the `postgres` target, and give the same rows as on DuckDB.

Address validation is the runner's (`directmail addresses validate`), whose PostgreSQL side comes later:
models downstream of `direct_mail.address_validations` are built on PostgreSQL over DuckDB's validation
results, copied into the same table.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.conftest import REPO, copy_sample_project
from tests.model_rows import (
    CAMPAIGNS,
    DOWNSTREAM_MODELS,
    SQL_MODELS,
    VALIDATIONS,
    build_duckdb_reference,
    dbt,
    duckdb_rows,
    model_results,
    normalized_rows,
    without_load_time,
)


def generate_sample(env: dict[str, str], profiles: int) -> str:
    """`sampledata.generate --target postgres` into the database `env` names; its report (stdout)."""
    generated = subprocess.run(
        [sys.executable, "-m", "sampledata.generate", "--target", "postgres", "--profiles", str(profiles)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert generated.returncode == 0, generated.stderr
    return generated.stdout


def postgres_connection(env: dict[str, str], database: str | None = None):
    import psycopg2

    return contextlib.closing(
        psycopg2.connect(
            host=env["PGHOST"], port=env["PGPORT"], user=env["PGUSER"], dbname=database or env["PGDATABASE"]
        )
    )


def postgres_rows(env: dict[str, str], relation: str) -> tuple[list[str], list[tuple]]:
    with postgres_connection(env) as con, con.cursor() as cursor:
        cursor.execute(f"select * from {relation}")
        return [c.name for c in cursor.description], normalized_rows(cursor.fetchall())


def test_unit_test_names_fit_postgres_identifiers():
    """dbt names a unit test's relation after it; PostgreSQL refuses identifiers over 63 bytes."""
    names = [
        test["name"]
        for path in sorted((REPO / "models").rglob("*.yml"))
        for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    ]
    assert len(names) >= 5
    assert [name for name in names if len(name.encode()) > 63] == []


@pytest.fixture
def projects(tmp_path: Path, postgres, monkeypatch: pytest.MonkeyPatch):
    """The sample project twice: on DuckDB (built in full) and on the PostgreSQL server (a fresh database)."""
    monkeypatch.delenv("DIRECTMAIL_WAREHOUSE", raising=False)
    database = f"sample_{os.getpid()}_{tmp_path.name.replace('-', '_')}"[:63].lower()
    env = postgres.new_database(database)
    on_duckdb = copy_sample_project(tmp_path / "duckdb")
    on_postgres = copy_sample_project(tmp_path / "postgres")
    return on_duckdb, on_postgres, env


@pytest.mark.slow
def test_sql_models_build_on_postgres_and_match_duckdb(projects):
    on_duckdb, on_postgres, env = projects
    generated = generate_sample(env, 2000)
    assert f"@127.0.0.1:{env['PGPORT']}/{env['PGDATABASE']}: 2,000 profiles, 3,894 consents" in generated

    seeds = dbt(on_postgres, env, "seed", "--target", "postgres")
    assert len(seeds) == 6 and {r["status"] for r in seeds} == {"success"}
    results = dbt(on_postgres, env, "build", "--target", "postgres", "--exclude", f"{VALIDATIONS}+")
    kinds = model_results(results)
    assert set(kinds) == {"model", "seed", "test", "unit_test"}
    assert len(kinds["model"]) == len(SQL_MODELS) + 6  # + the history's staging and the two reports
    assert len(kinds["unit_test"]) >= 4 and set(kinds["unit_test"]) == {"pass"}
    assert len(kinds["test"]) >= 30 and set(kinds["test"]) == {"pass"}
    # The rest over the empty direct_mail.address_validations of a fresh sample, so the two builds are a
    # plain `dbt build`: every address pending, one warning that names the command, nothing failing.
    pending = dbt(on_postgres, env, "build", "--target", "postgres", "--select", f"{VALIDATIONS}+")
    assert {r["status"] for r in pending} == {"success", "pass", "warn"}
    warned = [r for r in pending if r["status"] == "warn"]
    assert [r["unique_id"].split(".")[2] for r in warned] == ["assert_collected_addresses_are_validated"]
    assert "directmail addresses validate" in warned[0]["message"]

    build_duckdb_reference(on_duckdb, env)

    for model in [*SQL_MODELS, "raw_crm.profiles", "raw_crm.orders", "raw_crm.consents", "offers"]:
        relation = model if "." in model else f"main.{model}"
        duck_columns, duck = duckdb_rows(on_duckdb, relation)
        pg_columns, pg = postgres_rows(env, relation)
        if relation.startswith("raw_crm."):  # the same rows, written at another time
            duck_columns, duck = without_load_time(duck_columns, duck)
            pg_columns, pg = without_load_time(pg_columns, pg)
        assert pg_columns == duck_columns, relation
        assert len(pg) == len(duck) > 0, relation
        assert pg == duck, relation
    # the md5 address key is the same string on both: the validation's cache carries over
    _, keys = postgres_rows(env, "main.int_addresses_collected")
    assert all(len(key) == 32 for key, *_ in keys)

    # Downstream of address validation: DuckDB's results copied over, then the SQL models on PostgreSQL.
    import adbc_driver_postgresql.dbapi as adbc

    with duckdb.connect(str(on_duckdb / "warehouse" / "directmail.duckdb"), read_only=True) as con:
        results_table = con.sql("select * from direct_mail.address_validations").to_arrow_table()
    with adbc.connect(f"postgresql://{env['PGUSER']}@127.0.0.1:{env['PGPORT']}/{env['PGDATABASE']}") as con:
        with con.cursor() as cursor:
            cursor.adbc_ingest(
                "address_validations", results_table, mode="append", db_schema_name="direct_mail"
            )
        con.commit()
    downstream = dbt(
        on_postgres,
        env,
        "build",
        "--target",
        "postgres",
        "--select",
        f"{VALIDATIONS}+",
    )
    assert {r["status"] for r in downstream} <= {"success", "pass"}
    assert {r["unique_id"] for r in downstream} >= {
        f"model.directmail_sample.{m}" for m in [*DOWNSTREAM_MODELS, *CAMPAIGNS]
    }
    for model in [*DOWNSTREAM_MODELS, *CAMPAIGNS]:
        duck_columns, duck = duckdb_rows(on_duckdb, f"main.{model}")
        pg_columns, pg = postgres_rows(env, f"main.{model}")
        assert pg_columns == duck_columns, model
        assert len(pg) == len(duck) > 0, model
        assert pg == duck, model
    # the mail house's labels keep their case and spaces; greetings in the profile's language
    columns, postcards = postgres_rows(env, "main.lapsed_postcard")
    assert columns[:3] == ["profile_id", "Greeting", "Name"] and "Postal Code" in columns
    assert {row[1].split(" ")[0] for row in postcards} >= {"Bonjour", "Hallo", "Dear"}

    # int_addresses_collected is incremental on PostgreSQL too: a changed address is appended, each key
    # once, the earlier rows kept.
    _, before = postgres_rows(env, "main.int_addresses_collected")
    with postgres_connection(env) as con, con.cursor() as cursor:
        cursor.execute(
            "update raw_crm.profiles set address_line_2 = 'Bâtiment Z' where profile_id = 'P00000001'"
        )
        con.commit()
    dbt(on_postgres, env, "run", "--target", "postgres", "--select", "int_addresses_collected")
    _, after = postgres_rows(env, "main.int_addresses_collected")
    assert set(before) <= set(after) and [row[2] for row in set(after) - set(before)] == ["Bâtiment Z"]
    assert len({row[0] for row in after}) == len(after)

    # A new sample over the built project: tables refilled (dbt's views on them kept), history emptied.
    with postgres_connection(env) as con, con.cursor() as cursor:
        cursor.execute(
            "insert into direct_mail.runs (run_id, campaign, run_time, status) values ('a@1', 'a', now(), 'failed')"
        )
        con.commit()
    generate_sample(env, 1000)
    assert postgres_rows(env, "(select count(*) from main.stg_crm__profiles) as p")[1] == [(1000,)]
    assert postgres_rows(env, "(select count(*) from direct_mail.runs) as r")[1] == [(0,)]
