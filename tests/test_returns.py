"""Return files: checked whole, stored idempotently in direct_mail.returns, and excluding later runs."""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from directmail.history import History
from directmail.returnfile import MAX_LISTED, ReturnFileRefused, parse_return_file
from directmail.returns import ingest_file, store_return_file
from directmail.warehouse.duckdb_warehouse import DuckDBWarehouse

NOW = datetime(2026, 11, 23, 12, 0, 0)
META = {"file_name": "catalog.csv", "sort_by": ["profile_id"]}


def parse(text: str | bytes, now: datetime = NOW):
    data = text.encode() if isinstance(text, str) else text
    return [(r.identity, r.reason, r.returned_at, r.line) for r in parse_return_file(data, "r.csv", now)]


def refusal(text: str | bytes) -> list[str]:
    with pytest.raises(ReturnFileRefused) as caught:
        parse(text)
    return caught.value.lines()


def store(kit, text: str, name: str = "returns.csv", now: datetime = NOW):
    with DuckDBWarehouse(kit.database) as warehouse:
        History(warehouse).ensure_tables()
        return store_return_file(warehouse, text.encode(), name, f"file {name}", now)


# -- reading a return file ------------------------------------------------------------------------------


def test_header_bom_crlf_blank_lines_default_time_and_repeats():
    text = (
        "\ufeffIdentity,Reason,Returned_At\r\n"
        "P1,moved,2026-11-02\r\n"
        "\r\n"
        '"P2", Deceased ,2026-11-03T10:15:00+01:00\r\n'
        "P3,refused\r\n"
        "P1,moved,2026-11-02T00:00:00Z\r\n"  # the same return as line 2: kept once
        "P4,undeliverable,\r\n"
    )
    assert parse(text) == [
        ("P1", "moved", datetime(2026, 11, 2), 2),
        ("P2", "deceased", datetime(2026, 11, 3, 9, 15), 4),
        ("P3", "refused", NOW, 5),
        ("P4", "undeliverable", NOW, 7),
    ]


def test_an_undated_row_repeating_a_return_of_the_file_is_kept_once():
    text = (
        "P1,moved\nP1,moved,2026-11-02\nP2,refused\nP2,refused,\nP3,moved,2026-11-01\nP3,moved,2026-11-03\n"
    )
    assert parse(text) == [
        ("P1", "moved", datetime(2026, 11, 2), 2),  # the undated line 1 says no more than line 2
        ("P2", "refused", NOW, 3),
        ("P3", "moved", datetime(2026, 11, 1), 5),  # two dates: two returns
        ("P3", "moved", datetime(2026, 11, 3), 6),
    ]


def test_a_two_column_header_and_no_header():
    assert parse("identity,reason\nP1,moved\n") == [("P1", "moved", NOW, 2)]
    assert parse("P1,moved") == [("P1", "moved", NOW, 1)]


def test_every_bad_row_is_named_with_its_line_and_reason():
    text = (
        "identity,reason,returned_at\n"
        "P1,moved\n"
        "P2\n"
        ",moved\n"
        "P3,lost\n"
        "P4,moved,01/11/2026\n"
        "P5,moved,2026-12-31\n"
        "P6,moved,2026-11-01,extra\n"
        "identity,reason\n"
    )
    assert refusal(text) == [
        "r.csv: refused, nothing stored: 7 bad rows",
        "r.csv: line 3: 1 field(s); expected identity,reason[,returned_at]",
        "r.csv: line 4: empty identity",
        "r.csv: line 5: unknown reason 'lost' (expected one of undeliverable, moved, deceased, refused)",
        "r.csv: line 6: returned_at '01/11/2026' is not an ISO 8601 date or timestamp",
        "r.csv: line 7: returned_at '2026-12-31' is in the future",
        "r.csv: line 8: 4 field(s); expected identity,reason[,returned_at]",
        "r.csv: line 9: unknown reason 'reason' (expected one of undeliverable, moved, deceased, refused)",
    ]


def test_a_date_of_tomorrow_is_accepted_for_time_zones_ahead_of_utc():
    assert parse("P1,moved,2026-11-24") == [("P1", "moved", datetime(2026, 11, 24), 1)]


def test_the_listing_is_capped_and_counts_the_rest():
    lines = refusal("".join(f"P{i},lost\n" for i in range(100)))
    assert lines[0] == "r.csv: refused, nothing stored: 100 bad rows"
    assert len(lines) == 1 + MAX_LISTED + 1
    assert lines[-1] == f"r.csv: … and {100 - MAX_LISTED} more bad row(s)"


def test_encodings_other_than_utf8_are_refused_naming_the_lines():
    latin1 = "P1,moved\nPé,moved\nP3,refused\nPà,moved\n".encode("latin-1")
    assert refusal(latin1)[1:] == [
        "r.csv: line 2: not UTF-8 (byte 0xe9 at character 2); save the file as UTF-8",
        "r.csv: line 4: not UTF-8 (byte 0xe0 at character 2); save the file as UTF-8",
    ]
    assert (
        refusal("P1,moved\n".encode("utf-16"))[1]
        == "r.csv: line 1: the file is UTF-16; return files must be UTF-8"
    )
    assert refusal('P1,"moved\nP2,moved\n')[1].startswith("r.csv: line 1: not readable as CSV")


# -- storing --------------------------------------------------------------------------------------------


def test_ingest_stores_rows_and_the_file_and_is_idempotent(kit):
    text = "identity,reason,returned_at\nP1,moved,2026-11-02\nP2,deceased\n"
    first = store(kit, text)
    assert (first.rows, first.new, first.earlier) == (2, 2, None)
    assert first.sha256 == hashlib.sha256(text.encode()).hexdigest()
    rows = kit.sql(
        "select identity, reason, returned_at, source_file, source_sha256, source_line, ingested_at "
        "from direct_mail.returns order by identity"
    )
    assert rows == [
        ("P1", "moved", datetime(2026, 11, 2), "returns.csv", first.sha256, 2, NOW),
        ("P2", "deceased", NOW, "returns.csv", first.sha256, 3, NOW),
    ]
    # The same bytes again, later and under another name: nothing new, not even P2's default time.
    again = store(kit, text, "copy.csv", now=datetime(2026, 11, 24))
    assert (again.new, again.earlier) == (0, "returns.csv")
    assert again.describe() == "copy.csv: already ingested (as returns.csv); nothing stored"
    # Another file repeating a stored return adds only what is new.
    other = store(kit, "P1,moved,2026-11-02\nP3,refused,2026-11-20\n", "second.csv")
    assert (other.rows, other.new) == (2, 1)
    assert kit.sql("select count(*) from direct_mail.returns") == [(3,)]
    assert kit.sql(
        "select source_file, return_rows, new_returns from direct_mail.return_files order by 1"
    ) == [
        ("returns.csv", 2, 2),
        ("second.csv", 2, 1),
    ]


def test_an_undated_return_stored_before_is_not_stored_again_nor_dated_anew(kit):
    """A mail house's cumulative file without returned_at: each ingest would otherwise store its earlier
    returns again, dated by that ingest, and push their suppression forward."""
    kit.rows(3)
    project = kit.project(META, extra={"returns": {"suppress_days": 30}})
    first = store(kit, "identity,reason\nP000000001,moved\n", "week_1.csv", now=datetime(2026, 1, 10, 8))
    assert (first.rows, first.new) == (1, 1)
    cumulative = "identity,reason\nP000000001,moved\nP000000002,refused\n"
    second = store(kit, cumulative, "week_2.csv", now=datetime(2026, 1, 17, 8))
    assert second.describe() == "week_2.csv: 2 return(s), 1 new, 1 already stored"
    assert kit.sql("select identity, returned_at, source_file from direct_mail.returns order by 1") == [
        ("P000000001", datetime(2026, 1, 10, 8), "week_1.csv"),
        ("P000000002", datetime(2026, 1, 17, 8), "week_2.csv"),
    ]
    # 30 days after the first ingest: P1's return has expired, P2's has not.
    record = kit.run(project, run_time="2026-02-09T08:00:00Z")
    assert record.excluded["suppressed"] == 1 and record.exported == 2
    assert set(exclusions(kit)) == {"campaign@2026-02-09T08:00:00Z:P000000002"}

    # A dated row is keyed by its date as before: another date is another return (P1), an undated row
    # of a return stored with a date is not new (P2 undated, P3 stored dated below).
    store(kit, "P000000003,moved,2026-01-05\n", "dated.csv", now=datetime(2026, 1, 20))
    later = store(
        kit,
        "P000000001,moved,2026-01-20\nP000000002,refused\nP000000003,moved\nP000000003,refused\n",
        "week_3.csv",
        now=datetime(2026, 1, 24, 8),
    )
    assert later.describe() == "week_3.csv: 4 return(s), 2 new, 2 already stored"
    assert kit.sql(
        "select identity, reason, returned_at from direct_mail.returns where source_file = 'week_3.csv' "
        "order by 1"
    ) == [
        ("P000000001", "moved", datetime(2026, 1, 20)),
        ("P000000003", "refused", datetime(2026, 1, 24, 8)),
    ]


def test_a_refused_file_stores_nothing(kit, tmp_path):
    from tests.runner_kit import Kit

    store(kit, "P0,moved,2026-11-01\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("P1,moved\nP2,lost\nP3,moved,tomorrow\n")
    target = Kit(kit.directory).project(META).dbt.target_info()
    with pytest.raises(ReturnFileRefused) as caught:
        ingest_file(bad, target, kit.directory)
    assert caught.value.lines()[1:] == [
        "bad.csv: line 2: unknown reason 'lost' (expected one of undeliverable, moved, deceased, refused)",
        "bad.csv: line 3: returned_at 'tomorrow' is not an ISO 8601 date or timestamp",
    ]
    assert kit.sql("select identity from direct_mail.returns") == [("P0",)]
    assert kit.sql("select count(*) from direct_mail.return_files") == [(1,)]


# -- exclusion in later runs ----------------------------------------------------------------------------


def taken(kit) -> None:
    """The mail house took the drop: the next run's files (of the same names) are not in its way."""
    shutil.rmtree(kit.directory / "landing")


def exclusions(kit) -> dict[str, tuple[str, str]]:
    rows = kit.sql(
        "select run_id, profile_id, reason, detail from direct_mail.exclusions where reason = 'suppressed'"
    )
    return {f"{run}:{profile}": (reason, detail) for run, profile, reason, detail in rows}


def test_a_returned_profile_is_suppressed_in_later_runs(kit):
    kit.rows(5)
    project = kit.project(META)
    store(
        kit,
        "P000000001,moved,2026-11-02\nP000000003,undeliverable,2026-11-01\nP000000003,deceased,2026-11-05\n",
    )
    record = kit.run(project)
    assert record.excluded["suppressed"] == 2 and record.exported == 3
    assert record.exclusion_details["suppressed"] == {"return:deceased": 1, "return:moved": 1}
    run_id = record.run_id
    assert exclusions(kit) == {
        f"{run_id}:P000000001": ("suppressed", "return:moved"),
        f"{run_id}:P000000003": ("suppressed", "return:deceased"),  # the gravest of its returns
    }
    landed = kit.landing()["catalog.csv"].decode()
    assert "Name 1," not in landed and "Name 3," not in landed and "Name 2," in landed


def test_suppress_days_lets_a_return_expire_counted_from_the_run_time(kit):
    kit.rows(3)
    project = kit.project(META, extra={"returns": {"suppress_days": 30}})
    store(kit, "P000000001,moved,2026-01-10T08:00:00Z\n")
    within = kit.run(project, run_time="2026-02-09T07:59:59Z")
    assert within.excluded["suppressed"] == 1
    taken(kit)
    expired = kit.run(project, run_time="2026-02-09T08:00:00Z")
    assert expired.excluded["suppressed"] == 0 and expired.exported == 3


def test_the_suppression_list_detail_wins_over_a_return(kit):
    kit.rows(3)
    kit.sql("create table dnm as select 'P000000001' as profile_id, 'do_not_mail' as list_name")
    extra = {"suppression": {"model": "dnm", "household_key": None}}
    store(kit, "P000000001,moved,2026-11-02\nP000000002,refused,2026-11-02\n")
    record = kit.run(kit.project(META, extra=extra))
    assert set(exclusions(kit).values()) == {("suppressed", "do_not_mail"), ("suppressed", "return:refused")}
    assert record.exclusion_details["suppressed"] == {"do_not_mail": 1, "return:refused": 1}


def test_a_warehouse_without_the_returns_table_runs_and_gains_it(kit):
    kit.rows(2)
    project = kit.project(META)
    kit.run(project)
    taken(kit)
    kit.sql("drop table direct_mail.returns; drop table direct_mail.return_files")
    record = kit.run(project, run_time="2026-11-30T06:00:00Z")
    assert record.status == "delivered" and record.excluded["suppressed"] == 0
    assert kit.sql("select count(*) from direct_mail.returns") == [(0,)]


def test_cli_ingest_exit_codes_and_messages(sample_project: Path, tmp_path):
    from tests.test_sample_project import cli, query

    good = tmp_path / "mailhouse_returns.csv"
    good.write_text("identity,reason,returned_at\nC000001,moved,2026-11-02\nC000002,refused,2026-11-03\n")
    result = cli(sample_project, "returns", "ingest", str(good))
    assert result.exit_code == 0, result.output
    assert "ingested mailhouse_returns.csv: 2 return(s), 2 new" in result.stdout
    result = cli(sample_project, "returns", "ingest", str(good))
    assert result.exit_code == 0 and "already ingested (as mailhouse_returns.csv)" in result.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("C000003,moved\nC000004,gone\n")
    result = cli(sample_project, "returns", "ingest", str(bad))
    assert result.exit_code == 1
    assert "bad.csv: refused, nothing stored: 1 bad row" in result.stderr
    assert "bad.csv: line 2: unknown reason 'gone'" in result.stderr
    assert query(sample_project, "select identity from direct_mail.returns order by 1") == [
        ("C000001",),
        ("C000002",),
    ]
    assert cli(sample_project, "returns", "ingest", str(tmp_path / "missing.csv")).exit_code == 1


def test_cli_pull_reports_each_file_and_exits_1_on_a_refused_one(sample_project: Path):
    from tests.test_sample_project import cli, query

    folder = sample_project / "landing" / "returns"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("C000001,moved,2026-11-02\n")
    (folder / "b.csv").write_text("C000002,moved,2026-11-02\n\nC000003,dead,2026-11-02\n")
    result = cli(sample_project, "returns", "pull", "--routing", "landing")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1:] == [
        "ingested a.csv: 1 return(s), 1 new",
        "warning: a.csv: 1 return(s) whose identity matches no mailed profile: line 1 'C000001'",
    ]
    assert result.stderr.splitlines() == [
        "b.csv: refused, nothing stored: 1 bad row",
        "b.csv: line 3: unknown reason 'dead' (expected one of undeliverable, moved, deceased, refused)",
    ]
    (folder / "b.csv").unlink()
    result = cli(sample_project, "returns", "pull", "--routing", "landing")
    assert result.exit_code == 0 and "skipped a.csv: already ingested (as a.csv)" in result.stdout
    assert query(sample_project, "select identity from direct_mail.returns") == [("C000001",)]
    (folder / "c.csv").write_text("C000004,moved,2026-11-02\n")
    result = cli(sample_project, "returns", "pull", "--routing", "landing", "--strict")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "c.csv: refused, nothing stored: 1 bad row",
        "c.csv: line 1: identity 'C000004' matches no mailed profile (--strict)",
    ]
    assert query(sample_project, "select identity from direct_mail.returns") == [("C000001",)]

    result = cli(sample_project, "returns", "pull", "--routing", "nowhere")
    assert result.exit_code == 1
    assert "direct_mail.yml: routing.nowhere: no such routing (defined: landing)" in result.stderr


def test_suppress_days_must_be_a_positive_number_of_days(tmp_path):
    from directmail.config import load_config
    from directmail.errors import ConfigError

    (tmp_path / "direct_mail.yml").write_text("returns:\n  suppress_days: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "direct_mail.yml: returns.suppress_days: Input should be greater than or equal to 1" in str(
        caught.value
    )
    (tmp_path / "direct_mail.yml").write_text("returns:\n  expire_days: 30\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "returns.expire_days: unknown key" in str(caught.value)
