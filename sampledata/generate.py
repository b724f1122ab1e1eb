"""Write a deterministic sample CRM (profiles, consents, orders) into the `raw_crm` schema of a warehouse.

Everything is generated in SQL from `range(N)` and stable hashes of (row, seed), so 2,000 profiles for the
demo and 10 million for the benchmark come from the same code, in seconds, and the same seed always gives
the same rows. So that every exclusion path has something to do: about 1 % of profiles duplicate the
previous one's person and address under a new id; about 4 % more live at the previous profile's address (a
household: same address and family name, another person); about 3 % miss a first line, a city or a postal
code; about 1 % have a postal code cut short, and about 1 % have no region (invalid where the country's
post requires one: ES, US, JP). House numbers run from 1 to 999 within each block of 100,000 profiles,
and each block has its own range, so addresses stay distinct at scale (1 M profiles: 860,000 distinct
addresses; the demo's first 100,000 profiles are unchanged). Every table has `_loaded_at`, when this load
wrote it (UTC, one value for the whole load), as a CRM export's loader stamps its rows: the `crm` source's
freshness reads it. It is the one column the seed does not decide.

    python -m sampledata.generate --database warehouse/directmail.duckdb --profiles 2000 --seed 42
    python -m sampledata.generate --target postgres --profiles 2000  # where PGHOST, PGDATABASE … point
    python -m sampledata.generate --target spark --profiles 2000     # profiles.yml's `spark` target

On PostgreSQL the rows are the same: they are generated in an in-memory DuckDB and moved as Arrow through
ADBC (`adbc_ingest`), in one transaction with the empty history's tables. On Spark too: the Arrow tables
become Spark DataFrames written as parquet tables of the `spark` target's metastore.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from directmail.history import DDL as HISTORY_DDL
from directmail.history import spark_ddl
from sampledata.countries import COUNTRIES

REFERENCE_DATE = "2026-11-01"


def _country_table() -> pa.Table:
    rows, low = [], 0
    for code, spec in COUNTRIES.items():
        rows.append(
            {
                "country_code": code,
                "draw_low": low,
                "draw_high": low + spec["weight"] - 1,
                "currency": spec["currency"],
                "languages": spec["languages"],
                "first_names": spec["first_names"],
                "last_names": spec["last_names"],
                "streets": spec["streets"],
                "line_1_format": spec["line_1"],
                "second_lines": spec["line_2"],
                "postal_codes": [loc[0] for loc in spec["localities"]],
                "cities": [loc[1] for loc in spec["localities"]],
                "regions": [loc[2] for loc in spec["localities"]],
            }
        )
        low += spec["weight"]
    assert low == 100, "country weights must add up to 100"
    return pa.Table.from_pylist(rows)


PROFILES_SQL = """
create or replace table raw_crm.profiles as
with ids as (
    select
        i,
        case when i > 0 and hash(i, $seed, 'duplicate') % 100 = 0 then i - 1 else i end as person,
        case when i > 0 and hash(i, $seed, 'duplicate') % 100 < 5 then i - 1 else i end as home,
    from range($profiles) as r(i)
),
drawn as (
    select
        ids.*,
        c.*,
        cast(hash(home, $seed, 'locality') % len(c.postal_codes) as bigint) + 1 as locality,
        hash(home, $seed, 'defect') % 100 as defect,
    from ids
    join sample_countries as c
        on hash(home, $seed, 'country') % 100 between c.draw_low and c.draw_high
)
select
    'P' || lpad(cast(i + 1 as varchar), 8, '0') as profile_id,
    pick(first_names, hash(person, $seed, 'first')) as first_name,
    pick(last_names, hash(home, $seed, 'last')) as last_name,
    'customer' || cast(i + 1 as varchar) || '@example.com' as email,
    case when defect = 2 then '' else
        replace(replace(replace(line_1_format,
            '{street}', pick(streets, hash(home, $seed, 'street'))),
            '{n2}', cast(hash(home, $seed, 'n2') % 30 + 1 as varchar)),
            '{n}', cast(hash(home, $seed, 'number') % 999 + 1 + 1000 * (home // 100000) as varchar))
    end as address_line_1,
    case when hash(home, $seed, 'line2') % 100 < 60
        then replace(
            pick(second_lines, hash(home, $seed, 'line2pick')),
            '{k}', cast(hash(home, $seed, 'flat') % 300 + 1 as varchar)
        )
    end as address_line_2,
    case
        when defect = 0 then null
        when defect = 3 then left(postal_codes[locality], length(postal_codes[locality]) - 1)
        else postal_codes[locality]
    end as postal_code,
    case when defect = 1 then '' else cities[locality] end as city,
    case when defect = 4 then null else nullif(regions[locality], '') end as region,
    country_code,
    pick(languages, hash(person, $seed, 'language')) as language,
    case
        when hash(person, $seed, 'tier') % 100 < 50 then 'bronze'
        when hash(person, $seed, 'tier') % 100 < 80 then 'silver'
        when hash(person, $seed, 'tier') % 100 < 95 then 'gold'
        else 'platinum'
    end as loyalty_tier,
    currency,
    date '1950-01-01' + cast(hash(person, $seed, 'birth') % 18000 as integer) as birth_date,
    timestamp '2018-01-01 00:00:00'
        + to_seconds(cast(hash(i, $seed, 'created') % 250000000 as bigint)) as created_at,
    cast($loaded_at as timestamp) as _loaded_at,
from drawn
order by i
"""

CONSENTS_SQL = """
create or replace table raw_crm.consents as
with draws as (
    select profile_id, hash(profile_id, $seed, 'consent') % 100 as draw, created_at
    from raw_crm.profiles
)
select
    profile_id,
    'direct_mail' as marketing_action,
    case when draw < 70 then 'y' when draw < 85 then 'n' else '' end as consent_value,
    created_at + interval 1 day as updated_at,
    cast($loaded_at as timestamp) as _loaded_at,
from draws
where draw < 95
union all
select
    profile_id,
    'email' as marketing_action,
    case when draw % 2 = 0 then 'y' else 'n' end as consent_value,
    created_at as updated_at,
    cast($loaded_at as timestamp) as _loaded_at,
from draws
"""

ORDERS_SQL = """
create or replace table raw_crm.orders as
with per_profile as (
    select profile_id, currency, unnest(range(cast(hash(profile_id, $seed, 'orders') % 6 as bigint))) as n
    from raw_crm.profiles
)
select
    profile_id || '-' || lpad(cast(n + 1 as varchar), 2, '0') as order_id,
    profile_id,
    timestamp '{reference} 12:00:00'
        - to_seconds(cast(hash(profile_id, n, $seed, 'when') % (3 * 365 * 86400) as bigint)) as ordered_at,
    cast(
        (hash(profile_id, n, $seed, 'amount') % 40000 + 500) / 100.0
        * case currency when 'JPY' then 150 else 1 end
        as decimal(12, 2)
    ) as amount,
    currency,
    cast($loaded_at as timestamp) as _loaded_at,
from per_profile
""".replace("{reference}", REFERENCE_DATE)


CRM_TABLES = ("profiles", "consents", "orders")
# Where each non-DuckDB target writes (for --database's refusal).
TARGET_PLACES = {
    "postgres": "reads PGHOST, PGPORT, PGDATABASE …",
    "spark": "writes where profiles.yml's spark target points (DIRECTMAIL_SPARK_DIR)",
}

# profiles.yml's `postgres` target reads the same variables with the same defaults.
LIBPQ_DEFAULTS = {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "postgres", "PGDATABASE": "directmail"}


def load_time(loaded_at: datetime | None = None) -> datetime:
    """The `_loaded_at` of a load: the time given, or now; naive UTC, as the warehouse's other times."""
    moment = loaded_at or datetime.now(UTC)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _write_crm(
    con: duckdb.DuckDBPyConnection, profiles: int, seed: int, loaded_at: datetime | None = None
) -> None:
    con.execute("create schema if not exists raw_crm")
    con.register("sample_countries", _country_table())
    con.execute("create or replace temp macro pick(items, h) as items[cast(h % len(items) as bigint) + 1]")
    stamp = load_time(loaded_at)
    con.execute(PROFILES_SQL, {"profiles": profiles, "seed": seed, "loaded_at": stamp})
    con.execute(CONSENTS_SQL, {"seed": seed, "loaded_at": stamp})
    con.execute(ORDERS_SQL, {"seed": seed, "loaded_at": stamp})


def generate(
    database: Path, profiles: int, seed: int = 42, loaded_at: datetime | None = None
) -> dict[str, int]:
    """(Re)create raw_crm.profiles, .consents and .orders and an empty history; return the row counts.
    `loaded_at` (default: now) is the rows' `_loaded_at`."""
    database.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database)) as con:
        _write_crm(con, profiles, seed, loaded_at)
        # A new sample CRM starts with an empty history (no frequency cap carried over from an earlier
        # sample), whose tables exist so that `dbt build` of the reporting views works.
        con.execute("drop schema if exists direct_mail cascade")
        for statement in HISTORY_DDL:
            con.execute(statement)
        return {
            table: con.execute(f"select count(*) from raw_crm.{table}").fetchall()[0][0]
            for table in CRM_TABLES
        }


def postgres_location() -> str:
    """Where the `postgres` target points (host, port, database, user): never the password."""
    env = {name: os.environ.get(name) or default for name, default in LIBPQ_DEFAULTS.items()}
    return f"postgresql://{env['PGUSER']}@{env['PGHOST']}:{env['PGPORT']}/{env['PGDATABASE']}"


def _postgres_history_ddl() -> list[str]:
    # The history's DDL is portable SQL except DuckDB's `create view if not exists`.
    return [
        statement.replace("create view if not exists", "create or replace view") for statement in HISTORY_DDL
    ]


def generate_postgres(profiles: int, seed: int = 42, loaded_at: datetime | None = None) -> dict[str, int]:
    """The same rows as `generate`, written to the PostgreSQL named by libpq's PG* variables.

    Generated in an in-memory DuckDB (the same SQL, so the same rows), then moved as Arrow through ADBC
    in one transaction: a failure leaves the database as it was. Existing tables are emptied and
    refilled, so the views dbt built on them stay.
    """
    import adbc_driver_postgresql.dbapi as adbc

    for name, default in LIBPQ_DEFAULTS.items():
        if not os.environ.get(name):
            os.environ[name] = default  # libpq reads them (and PGPASSWORD) itself: no secret in a URI
    with duckdb.connect(":memory:") as memory:
        _write_crm(memory, profiles, seed, loaded_at)
        tables = {
            table: memory.sql(f"select * from raw_crm.{table}").to_arrow_table() for table in CRM_TABLES
        }
    try:
        with adbc.connect("postgresql://") as con, con.cursor() as cur:
            # Emptied and refilled rather than dropped: PostgreSQL would refuse to drop (or cascade to)
            # the views dbt built on these tables, which DuckDB leaves in place.
            cur.execute("create schema if not exists raw_crm")
            for table, rows in tables.items():
                cur.execute(f"select to_regclass('raw_crm.{table}') is not null")
                if cur.fetchone()[0]:
                    cur.execute(f"truncate table raw_crm.{table}")
                cur.adbc_ingest(table, rows, mode="create_append", db_schema_name="raw_crm")
            for statement in _postgres_history_ddl():
                cur.execute(statement)
            cur.execute(
                "select table_name from information_schema.tables"
                " where table_schema = 'direct_mail' and table_type = 'BASE TABLE' order by table_name"
            )
            history = ", ".join(f"direct_mail.{name}" for (name,) in cur.fetchall())
            cur.execute(f"truncate table {history}")  # an empty history, as a new DuckDB sample has
            con.commit()
            counts = {}
            for table in CRM_TABLES:
                cur.execute(f"select count(*) from raw_crm.{table}")
                counts[table] = cur.fetchone()[0]
            return counts
    except adbc.Error as error:
        raise SystemExit(f"sample to {postgres_location()} failed: {error}") from None


def _spark_target(project_dir: Path, target: str) -> Any:
    """The target as the runner reads it (profiles.yml rendered by dbt, env_var() included)."""
    from directmail.builder import DbtProject

    info = DbtProject(project_dir, target).target_info()
    if info.adapter_type != "spark":
        raise SystemExit(f"profiles.yml: target {target!r} is of type {info.adapter_type!r}, not spark")
    return info


def spark_parameters(project_dir: Path = Path("."), target: str = "spark") -> dict[str, str]:
    """The target's `server_side_parameters`, as dbt-spark's `session` method applies them."""
    from directmail.warehouse.spark_warehouse import session_parameters

    return session_parameters(_spark_target(project_dir, target))


def spark_session(project_dir: Path = Path("."), target: str = "spark") -> Any:
    """The Spark session of the target (started here, or the one this process already has): the runner's
    own, so that dbt-spark's `session` method finds it (`getOrCreate`)."""
    from directmail.warehouse.spark_warehouse import spark_session as target_session

    return target_session(_spark_target(project_dir, target), project_dir)


def derby_in_use(parameters: dict[str, str]) -> Path | None:
    """The embedded Derby metastore the parameters name, when another process has it booted (Derby
    admits one process: a second one fails deep in Hive with thousands of lines of Java). Call it only
    before this process starts Spark: closing the probe releases every lock this process holds on it."""
    import fcntl
    import re

    url = parameters.get("spark.hadoop.javax.jdo.option.ConnectionURL", "")
    named = re.match(r"jdbc:derby:.*databaseName=([^;]+)", url)
    lock = Path(named.group(1)) / "dbex.lck" if named else None
    if lock is None or not lock.exists():
        return None
    with lock.open("r+b") as probe:
        try:
            fcntl.lockf(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return lock.parent
        fcntl.lockf(probe, fcntl.LOCK_UN)
    return None


def spark_location(spark: Any) -> str:
    """Where the session's tables are (its master and warehouse folder)."""
    return f"spark {spark.conf.get('spark.master')} {spark.conf.get('spark.sql.warehouse.dir')}"


def generate_spark(
    profiles: int, seed: int = 42, spark: Any = None, loaded_at: datetime | None = None
) -> dict[str, int]:
    """The same rows as `generate`, written to the `spark` target's tables (parquet).

    Generated in an in-memory DuckDB (the same SQL, so the same rows); each table goes to Spark as Arrow
    (`createDataFrame`) and replaces the table of the same name. The history is dropped and created
    empty (directmail.history.spark_ddl), as a new DuckDB sample's. dbt's views over these tables stay:
    a Spark view is resolved by name when read.
    """
    with duckdb.connect(":memory:") as memory:
        _write_crm(memory, profiles, seed, loaded_at)
        tables = {
            table: memory.sql(f"select * from raw_crm.{table}").to_arrow_table() for table in CRM_TABLES
        }
    session = spark or spark_session()
    session.sql("create schema if not exists raw_crm")
    for table, rows in tables.items():
        frame = session.createDataFrame(rows)
        frame.write.mode("overwrite").format("parquet").saveAsTable(f"raw_crm.{table}")
    session.sql("drop schema if exists direct_mail cascade")
    for statement in spark_ddl():
        session.sql(statement)
    return {table: session.table(f"raw_crm.{table}").count() for table in CRM_TABLES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--target",
        choices=("duckdb", "postgres", "spark"),
        default="duckdb",
        help="duckdb: the --database file; postgres: the database libpq's PG* variables name; "
        "spark: profiles.yml's spark target (its tables under DIRECTMAIL_SPARK_DIR, default warehouse/spark)",
    )
    parser.add_argument("--database", type=Path, default=Path("warehouse/directmail.duckdb"))
    parser.add_argument("--profiles", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.target != "duckdb" and "--database" in sys.argv[1:]:
        parser.error(f"--database names a DuckDB file; --target {args.target} {TARGET_PLACES[args.target]}")
    if args.target == "postgres":
        counts, where = generate_postgres(args.profiles, args.seed), postgres_location()
    elif args.target == "spark":
        busy = derby_in_use(spark_parameters())
        if busy:
            raise SystemExit(
                f"sample to spark: the metastore {busy} is in use by another process (its embedded Derby "
                "admits one): let it finish, or set DIRECTMAIL_SPARK_DIR to another folder"
            )
        spark = spark_session()
        spark.sparkContext.setLogLevel("ERROR")  # Spark's warnings about this machine, not the sample
        counts, where = generate_spark(args.profiles, args.seed, spark), spark_location(spark)
    else:
        counts, where = generate(args.database, args.profiles, args.seed), str(args.database)
    elapsed = time.perf_counter() - started
    print(f"{where}: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()) + f" in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
