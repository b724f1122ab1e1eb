"""Campaign runs on PostgreSQL deliver the same bytes as on DuckDB.

The sample written to a fresh PostgreSQL database whose default collation is ICU's `en-US` (which sorts
'a' before 'B'), and the same sample in a DuckDB file: both sample campaigns run at the same run time
with `--target postgres` and with the default target. The delivered files are byte for byte equal (file
order by code point, the same holdout), and so are the history rows (sends, exclusions with reasons and
details).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import copy_sample_project
from tests.test_postgres_models import generate_sample, postgres_rows
from tests.test_sample_project import RUN_TIME, cli, landing_files, query
from tests.test_sample_targeting import NEXT_DAY, SAMPLE_FILES_SHA256

CAMPAIGNS = ("winter_catalog", "lapsed_postcard")
# The history's rows but their timestamps (the moment each run recorded them).
HISTORY = {
    "direct_mail.sends": "run_id, campaign, profile_id, file_name, is_holdout",
    "direct_mail.exclusions": "run_id, campaign, profile_id, reason, detail",
}


@pytest.fixture
def projects(tmp_path: Path, postgres, monkeypatch: pytest.MonkeyPatch):
    """The sample project on DuckDB, and a copy whose `postgres` target is a fresh database (ICU en-US)."""
    monkeypatch.delenv("DIRECTMAIL_WAREHOUSE", raising=False)
    database = f"runs_{os.getpid()}_{tmp_path.name.replace('-', '_')}"[:63].lower()
    env = postgres.new_database(
        database, "template template0 encoding 'UTF8' locale_provider icu icu_locale 'en-US'"
    )
    generate_sample(env, 2000)
    for name in [k for k in os.environ if k.startswith("PG")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("PG"):
            monkeypatch.setenv(name, value)
    return copy_sample_project(tmp_path / "duckdb"), copy_sample_project(tmp_path / "postgres"), env


def _sorted(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda row: tuple((v is None, str(v)) for v in row))


@pytest.mark.slow
def test_runs_on_postgres_deliver_the_bytes_duckdb_delivers(projects):
    on_duckdb, on_postgres, env = projects
    for campaign in CAMPAIGNS:
        duck = cli(on_duckdb, "run", campaign, "--run-time", RUN_TIME)
        assert duck.exit_code == 0, duck.output
        pg = cli(on_postgres, "--target", "postgres", "run", campaign, "--run-time", RUN_TIME)
        assert pg.exit_code == 0, pg.output

    delivered = landing_files(on_postgres)
    assert delivered == landing_files(on_duckdb)
    assert {name: hashlib.sha256(data).hexdigest() for name, data in delivered.items()} == SAMPLE_FILES_SHA256

    for relation, columns in HISTORY.items():
        duck_rows = _sorted(query(on_duckdb, f"select {columns} from {relation}"))
        _, pg_rows = postgres_rows(env, f"(select {columns} from {relation}) as history")
        assert len(duck_rows) > 100, relation
        assert _sorted(pg_rows) == duck_rows, relation
    reasons = {row[0] for row in query(on_duckdb, "select distinct reason from direct_mail.exclusions")}
    assert {"suppressed", "invalid_address", "holdout", "no_postal_consent"} <= reasons

    again = cli(on_postgres, "--target", "postgres", "run", "winter_catalog", "--run-time", RUN_TIME)
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output
    assert landing_files(on_postgres) == delivered

    report = cli(on_postgres, "--target", "postgres", "report", "winter_catalog", "--json")
    assert report.exit_code == 0, report.output
    duck_report = cli(on_duckdb, "report", "winter_catalog", "--json")
    pg_run, duck_run = json.loads(report.output)["run"], json.loads(duck_report.output)["run"]
    assert pg_run["status"] == "delivered"
    for key in ("run_id", "targeted", "excluded", "exclusion_details", "holdout", "exported", "files"):
        assert pg_run[key] == duck_run[key], key

    listed = cli(on_postgres, "--target", "postgres", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert "lapsed_postcard@2026-11-23T06:00:00Z" in listed.output


def _both(on_duckdb: Path, on_postgres: Path, *args: str) -> tuple[str, str]:
    """The command's output on DuckDB and on PostgreSQL (each must succeed)."""
    duck = cli(on_duckdb, *args)
    assert duck.exit_code == 0, duck.output
    pg = cli(on_postgres, "--target", "postgres", *args)
    assert pg.exit_code == 0, pg.output
    return duck.output, pg.output


@pytest.mark.slow
def test_returns_preview_diff_and_explain_on_postgres_match_duckdb(projects, tmp_path):
    on_duckdb, on_postgres, env = projects
    _both(on_duckdb, on_postgres, "run", "lapsed_postcard", "--run-time", RUN_TIME)
    [moved, deceased] = [
        row[0]
        for row in query(
            on_duckdb,
            "select profile_id from direct_mail.sends where not is_holdout order by profile_id limit 2",
        )
    ]
    returns = tmp_path / "returns_2026-11.csv"
    returns.write_text(
        f"identity,reason,returned_at\n{moved},moved,2026-11-23\n{deceased},deceased,2026-11-23\n"
    )
    duck, pg = _both(on_duckdb, on_postgres, "returns", "ingest", str(returns))
    assert "2 return(s), 2 new" in pg and pg == duck
    duck, pg = _both(on_duckdb, on_postgres, "returns", "ingest", str(returns))
    assert pg == duck  # the same bytes again: nothing new

    duck, pg = _both(
        on_duckdb, on_postgres, "preview", "winter_catalog", "--run-time", NEXT_DAY, "--raw", "--limit", "50"
    )
    assert pg == duck and pg.count("\n") > 50
    _both(on_duckdb, on_postgres, "run", "lapsed_postcard", "--run-time", NEXT_DAY)
    assert landing_files(on_postgres) == landing_files(on_duckdb)
    for relation, columns in HISTORY.items():
        duck_rows = _sorted(query(on_duckdb, f"select {columns} from {relation}"))
        _, pg_rows = postgres_rows(env, f"(select {columns} from {relation}) as history")
        assert _sorted(pg_rows) == duck_rows, relation
    duck, pg = _both(on_duckdb, on_postgres, "diff", "lapsed_postcard", "--json")
    assert json.loads(pg) == json.loads(duck)
    duck, pg = _both(on_duckdb, on_postgres, "explain", "lapsed_postcard", moved, "--json")
    assert json.loads(pg) == json.loads(duck)
    assert json.loads(pg)["detail"] == "return:moved"

    duck, pg = _both(on_duckdb, on_postgres, "addresses", "validate")
    _, validations = postgres_rows(env, "(select count(*) from direct_mail.address_validations) as v")
    assert validations[0][0] > 1000


def test_runners_on_two_machines_take_turns_on_one_postgres(postgres, tmp_path):
    """Two project folders (two machines: two lock files) on one database: the second writer waits on
    the server's advisory lock until the first releases it."""
    from directmail.builder import RunnerCredentials, TargetInfo
    from directmail.locking import lock_path, warehouse_lock

    env = postgres.environment
    connection = {"host": env["PGHOST"], "port": int(env["PGPORT"]), "user": env["PGUSER"]}
    target = TargetInfo(
        "postgres", "postgres", RunnerCredentials(connection=connection | {"dbname": "directmail"})
    )
    first, second = tmp_path / "machine_a", tmp_path / "machine_b"
    assert lock_path(target, first) != lock_path(target, second)
    events: list[str] = []

    def other_machine() -> None:
        with warehouse_lock(target, second, lambda message: events.append(f"waiting: {message}")):
            events.append("second holds it")

    with warehouse_lock(target, first):
        thread = threading.Thread(target=other_machine)
        thread.start()
        for _ in range(100):
            if events:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        assert events == [
            f"waiting: another runner holds postgresql://postgres@127.0.0.1:{env['PGPORT']}/directmail; "
            "waiting for it to finish"
        ]
    thread.join(10)
    assert events[-1] == "second holds it"


# (PostgreSQL type, DuckDB type, the runner's type name, values as SQL literals)
TYPED_VALUES = [
    ("date", "date", "DATE", ["'2026-11-23'", "'0999-01-02'", "null"]),
    ("timestamp", "timestamp", "TIMESTAMP", ["'2026-11-23 06:00:00'", "'2026-11-23 06:00:00.125'", "null"]),
    ("timestamptz", "timestamptz", "TIMESTAMP WITH TIME ZONE", ["'2026-11-23 06:00:00+02'", "null"]),
    ("numeric(10,2)", "decimal(10,2)", "NUMERIC", ["12.5", "-0.25", "100000.00", "null"]),
    ("float8", "double", "DOUBLE", ["2.0", "0.1", "1e20", "1e15", "1e-05", "'nan'", "'-inf'", "null"]),
    ("integer", "integer", "INTEGER", ["42", "-7", "null"]),
    ("boolean", "boolean", "BOOLEAN", ["true", "false", "null"]),
    ("varchar", "varchar", "VARCHAR", ["'Große Straße; \"7\"'", "'line\nbreak'", "''", "null"]),
]


def test_the_dialects_write_the_same_text(postgres):
    """Contract 3's text of every type, the quoted line, the fixed-width line, the holdout bucket and the
    fallback household key: the same strings from PostgreSQL's SQL as from DuckDB's."""
    import duckdb

    from directmail.warehouse.duckdb_warehouse import DuckDBDialect

    pg = postgres.warehouse()
    duck, pg_dialect, duck_dialect = duckdb.connect(), pg.dialect, DuckDBDialect()

    def both(expression) -> tuple[list, list]:
        """expression(dialect, on_postgres) on each warehouse."""
        pg_rows = pg.rows(f"select {expression(pg_dialect, True)} as v")
        duck_rows = duck.execute(f"select {expression(duck_dialect, False)}").fetchall()
        return [row["v"] for row in pg_rows], [row[0] for row in duck_rows]

    for pg_type, duck_type, name, values in TYPED_VALUES:
        for value in values:
            on_pg, on_duck = both(
                lambda d, on_postgres, v=value, p=pg_type, t=duck_type, n=name: d.as_text(
                    f"cast({v} as {p if on_postgres else t})", n
                )
            )
            assert on_pg == on_duck, (name, value)
    fields = ["'a;b'", "'say \"hi\"'", "'plain'", "''"]
    on_pg, on_duck = both(lambda d, _: d.text_line(fields, ";", "\r\n"))
    assert on_pg == on_duck == ['"a;b";"say ""hi""";plain;\r\n']
    on_pg, on_duck = both(
        lambda d, _: d.fixed_width_line(fields, [6, 4, 8, 2], [True, False, False, True], "\n")
    )
    assert on_pg == on_duck == ['   a;bsay "hi"plain     \n']
    for key in ("'winter_catalog:P00000001'", "'lapsed_postcard:P00001999'", "'x:Ünïcode'"):
        on_pg, on_duck = both(lambda d, _, k=key: d.holdout_bucket(k))
        assert on_pg == on_duck, key
    on_pg, on_duck = both(lambda d, _: d.text_key(["' ÉCOLE Straße '", "'KÖLN'", "null"]))
    assert on_pg == on_duck
    pg.close()


def test_a_server_that_refuses_is_named_without_the_password(tmp_path):
    """Nothing listens on the port: the error names postgresql://user@host:port/database, not the secret."""
    from directmail.builder import RunnerCredentials, TargetInfo
    from directmail.errors import DirectMailError
    from directmail.warehouse import open_warehouse
    from tests.servers import free_port

    port = free_port()
    connection = {
        "host": "127.0.0.1",
        "port": port,
        "user": "mailer",
        "dbname": "brand",
        "sslmode": "disable",
    }
    credentials = RunnerCredentials(connection=connection, password="s3cret p@ss")
    with pytest.raises(DirectMailError) as raised:
        open_warehouse(TargetInfo("postgres", "prod", credentials), tmp_path)
    message = str(raised.value)
    assert f"cannot connect to postgresql://mailer@127.0.0.1:{port}/brand (target prod)" in message
    assert "s3cret" not in message and "s3cret" not in repr(credentials)


def test_a_password_written_in_the_profile_is_never_cached(tmp_path, monkeypatch):
    """The target's address is cached for the next command; a password of the profile's own is not (the
    target is read by dbt again), and PGPASSWORD's is left to libpq."""
    from directmail.builder import DbtProject
    from tests.conftest import copy_project_files

    monkeypatch.setenv("PGPASSWORD", "from-the-environment")
    project = tmp_path / "project"
    copy_project_files(project)
    target = DbtProject(project, "postgres").target_info()
    assert target.credentials.password == ""  # libpq reads PGPASSWORD itself
    assert target.credentials.connection["dbname"] == os.environ.get("PGDATABASE", "directmail")
    cached = DbtProject(project, "postgres")._cached_target()
    assert cached is not None and cached.credentials.connection == target.credentials.connection

    profiles = project / "profiles.yml"
    profiles.write_text(
        profiles.read_text().replace("\"{{ env_var('PGPASSWORD', '') }}\"", '"written-in-the-profile"')
    )
    target = DbtProject(project, "postgres").target_info()
    assert target.credentials.password == "written-in-the-profile"
    assert DbtProject(project, "postgres")._cached_target() is None
    cache = "".join(path.read_text() for path in (project / ".directmail").rglob("*.json"))
    assert "written-in-the-profile" not in cache and "from-the-environment" not in cache
