"""The incremental model int_addresses_collected on a real DuckDB file, day 1 then day 2 through the
runner: a changed address is appended (and validated, and printed), no earlier row is rewritten, a
deleted profile vanishes downstream, a consent change excludes; a full refresh makes a subset of the
increments' rows (less the addresses nobody holds any more)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from tests.test_sample_project import cli, query

DAY_1 = "2026-11-23T06:00:00Z"
# Today, and day 1's pieces recorded as delivered at day 1's run time (below): winter_catalog's frequency
# cap (1 in 6 days), which counts delivery times near now too (I2), is over.
DAY_2_AT = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DAY_2 = DAY_2_AT.strftime("%Y-%m-%dT%H:%M:%SZ")


def database(project: Path) -> str:
    return str(project / "warehouse" / "directmail.duckdb")


def exported_profiles(project: Path, run_id: str) -> list[str]:
    return [
        r[0] for r in query(project, f"select profile_id from direct_mail.sends where run_id = '{run_id}'")
    ]


def test_day_two_appends_only_new_addresses_and_every_change_flows_through(sample_project):
    project = sample_project
    assert cli(project, "run", "winter_catalog", "--run-time", DAY_1).exit_code == 0
    day_1 = set(query(project, "select * from main.int_addresses_collected"))
    sent = exported_profiles(project, f"winter_catalog@{DAY_1}")
    moved, refused, deleted = sent[0], sent[1], sent[2]
    addressed_sql = "select address_key, normalized_address_line_2 from main.int_profiles_addressed "
    [(old_key, _)] = query(project, f"{addressed_sql} where profile_id = '{moved}'")

    with duckdb.connect(database(project)) as con:
        con.execute("update direct_mail.send_rows set sent_at = ?::timestamp", [DAY_1.rstrip("Z")])
        con.execute("update raw_crm.profiles set address_line_2 = 'Bâtiment Z' where profile_id = ?", [moved])
        con.execute(
            "update raw_crm.consents set consent_value = 'n' "
            "where profile_id = ? and marketing_action = 'direct_mail'",
            [refused],
        )
        for table in ("consents", "orders", "profiles"):
            con.execute(f"delete from raw_crm.{table} where profile_id = ?", [deleted])
        # A mark in one kept row: an append keeps it, a rewrite of the table would lose it.
        con.execute(
            "update main.int_addresses_collected set city = 'kept by the append' where address_key = ?",
            [old_key],
        )
    day_1 = {row if row[0] != old_key else (*row[:4], "kept by the append", *row[5:]) for row in day_1}

    result = cli(project, "run", "winter_catalog", "--run-time", DAY_2)
    assert result.exit_code == 0, result.output

    day_2 = query(project, "select * from main.int_addresses_collected")
    added = set(day_2) - day_1
    assert day_1 <= set(day_2)  # every row kept as it was, even keys nobody holds any more
    assert [row[2] for row in added] == ["Bâtiment Z"]  # one row added: the changed address
    assert len({row[0] for row in day_2}) == len(day_2)  # each key once
    new_key = added.pop()[0]
    validated = f"select count(*) from direct_mail.address_validations where address_key = '{new_key}'"
    assert query(project, validated) == [(1,)]

    [(key, line_2)] = query(project, f"{addressed_sql} where profile_id = '{moved}'")
    assert key == new_key != old_key and line_2.upper() == "BÂTIMENT Z"
    for relation in ("main.int_profiles_addressed", "main.winter_catalog"):
        assert query(project, f"select count(*) from {relation} where profile_id = '{deleted}'") == [(0,)]

    run_id = f"winter_catalog@{DAY_2}"
    assert moved in exported_profiles(project, run_id)
    assert deleted not in exported_profiles(project, run_id)
    reasons = (
        f"select reason from direct_mail.exclusions where run_id = '{run_id}' and profile_id = '{refused}'"
    )
    assert query(project, reasons) == [("no_postal_consent",)]
    printed = b"".join(
        p.read_bytes() for p in (project / "landing").rglob(f"winter_catalog_{DAY_2_AT:%Y%m%d}*.csv")
    )
    assert line_2.encode() in printed


def test_a_full_refresh_holds_the_increments_keys_less_those_nobody_holds(sample_project):
    project = sample_project
    assert cli(project, "run", "winter_catalog", "--run-time", DAY_1).exit_code == 0
    day_1 = set(query(project, "select * from main.int_addresses_collected"))
    with duckdb.connect(database(project)) as con:
        con.execute("update raw_crm.profiles set city = city || ' Cedex' where profile_id <= 'P00000010'")
    assert cli(project, "addresses", "validate").exit_code == 0  # an incremental build, then validation
    incremental = set(query(project, "select * from main.int_addresses_collected"))

    from dbt.cli.main import dbtRunner

    from directmail.builder import release_connections

    args = ["--project-dir", str(project), "--profiles-dir", str(project), "--log-level", "none"]
    with contextlib.chdir(project):
        refreshed = dbtRunner().invoke(
            ["run", "--select", "int_addresses_collected", "--full-refresh", *args]
        )
    release_connections()
    assert refreshed.success
    rebuilt = set(query(project, "select * from main.int_addresses_collected"))
    stale = incremental - rebuilt
    assert rebuilt < incremental  # the increments hold every row a full refresh makes, as it makes it
    assert stale and stale <= day_1  # and earlier addresses that nobody holds now
    assert any(row[4].endswith(" Cedex") for row in incremental - day_1)
