"""`diff` and `explain` over real runs: two runs of a campaign whose audience changed in between (a profile
suppressed, one capped by another campaign's piece, one new, one gone, one whose consent came back, one
moved into the holdout), compared row by row; explain lines for each outcome; the JSON documents of
`diff`, `explain`, `list` and `report`; and the errors."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from directmail.committed import committed_runs
from directmail.diff import Change, choose_runs, diff_runs
from directmail.diff_report import to_json, to_lines, to_markdown
from directmail.errors import DirectMailError
from directmail.explain import explain
from directmail.warehouse.duckdb_warehouse import DuckDBWarehouse
from tests.conftest import copy_project_files
from tests.runner_kit import Kit

# The frequency cap counts pieces by when they were sent (now): run times near now keep them in its window.
_NOW = datetime.now(UTC).replace(microsecond=0)
RUN_1, OTHER_RUN, RUN_2 = (f"{_NOW - timedelta(days=d):%Y-%m-%dT%H:%M:%SZ}" for d in (3, 2, 1))
A, B = f"campaign@{RUN_1}", f"campaign@{RUN_2}"
SUPPRESSION = {"suppression": {"model": "suppressions"}}
CAP = {"count": 2, "days": 30}
# holdout buckets (md5 of 'campaign:<id>'): P12 292, P25 870, every other profile here above 1000
AUDIENCE_1 = ["P1", "P2", "P3", "P4", "P5", "P7", "P12", "P25"]
AUDIENCE_2 = ["P1", "P2", "P3", "P4", "P6", "P7", "P12", "P25"]


def campaign_table(kit: Kit, table: str, profiles: list[str]) -> None:
    values = ", ".join(f"('{p}', 'Name {p}')" for p in profiles)
    kit.sql(f"create or replace table {table} as select * from (values {values}) as t(profile_id, name)")


def two_runs(kit: Kit) -> None:
    """Run 1 (5% holdout); another campaign mails P4; run 2 (10% holdout) after the audience changed."""
    kit.sql("create table suppressions (list_name varchar, profile_id varchar, household_key varchar)")
    campaign_table(kit, "campaign", AUDIENCE_1)
    meta = {"file_name": "out.csv", "frequency_cap": CAP}
    first = kit.project({**meta, "holdout_percent": 5}, extra=SUPPRESSION)
    kit.sql("insert into consents values ('P7', 'direct_mail', 'n')")
    assert kit.run(first, run_time=RUN_1).exported == 6

    campaign_table(kit, "other", ["P4"])
    assert kit.run(kit.project({"file_name": "other.csv"}, table="other"), "other", OTHER_RUN).exported == 1

    campaign_table(kit, "campaign", AUDIENCE_2)
    kit.sql("insert into suppressions values ('do_not_mail', 'P2', null)")
    kit.sql("delete from consents where profile_id = 'P7'")
    second = kit.project({**meta, "holdout_percent": 10}, extra=SUPPRESSION)
    kit.take_drop()  # the mail house took run 1's drop: run 2 may use the same names
    assert kit.run(second, run_time=RUN_2).exported == 4


@pytest.fixture
def runs(kit: Kit) -> Kit:
    two_runs(kit)
    return kit


def read(kit: Kit, do):
    warehouse = DuckDBWarehouse(kit.database, read_only=True)
    try:
        return do(warehouse)
    finally:
        warehouse.close()


def test_diff_lists_who_was_added_and_dropped_with_their_reasons(runs):
    def compare(warehouse):
        a, b = choose_runs(warehouse, "campaign")
        return diff_runs(warehouse, "campaign", a, b)

    diff = read(runs, compare)
    assert (diff.run_a.run_id, diff.run_b.run_id) == (A, B)
    assert (diff.run_a.mailed, diff.run_a.holdout, diff.run_b.mailed, diff.run_b.holdout) == (6, 1, 4, 2)
    assert diff.added.rows == [
        Change("P6", "not_in_audience", None, "out.csv"),
        Change("P7", "no_postal_consent", None, "out.csv"),
    ]
    assert diff.dropped.rows == [
        Change("P5", "not_in_audience", None, "out.csv"),
        Change("P2", "suppressed", "do_not_mail", "out.csv"),
        Change("P4", "frequency_cap", "2 in the last 30 days", "out.csv"),
        Change("P25", "holdout", None, "out.csv"),
    ]
    assert diff.added.by_reason == {"not_in_audience": 1, "no_postal_consent": 1}
    assert diff.dropped.by_reason == {"not_in_audience": 1, "suppressed": 1, "frequency_cap": 1, "holdout": 1}
    assert (diff.added.count, diff.dropped.count, diff.unchanged) == (2, 4, 2)  # P1 and P3 in both

    # the counts match the history read directly
    [(mailed_b,)] = runs.sql(
        f"select count(*) from direct_mail.sends where run_id = '{B}' and not is_holdout"
    )
    assert mailed_b == diff.run_a.mailed + diff.added.count - diff.dropped.count

    lines = to_lines(diff)
    assert lines[:3] == [
        "campaign: campaign",
        f"run a: {A} (delivered): mailed 6, held out 1",
        f"run b: {B} (delivered): mailed 4, held out 2",
    ]
    assert "P2: excluded as suppressed (do_not_mail) in run b" in lines
    assert "P6: not in the audience in run a" in lines
    assert "P25: held out in run b" in lines
    assert "| Dropped | frequency_cap | 1 |" in to_markdown(diff)


def test_a_limit_lists_fewer_rows_but_counts_everything(runs):
    def compare(warehouse):
        a, b = choose_runs(warehouse, "campaign", A, B)
        return diff_runs(warehouse, "campaign", a, b, limit=1)

    diff = read(runs, compare)
    assert [c.profile_id for c in diff.dropped.rows] == ["P5"] and diff.dropped.count == 4
    assert [c.profile_id for c in diff.added.rows] == ["P6"] and diff.added.count == 2
    assert "dropped (first 1 listed; --limit 1):" in to_lines(diff)


def test_the_reverse_diff_swaps_added_and_dropped(runs):
    def compare(warehouse):
        a, b = choose_runs(warehouse, "campaign", B, A)
        return diff_runs(warehouse, "campaign", a, b)

    diff = read(runs, compare)
    assert [(c.profile_id, c.reason, c.detail) for c in diff.added.rows] == [
        ("P5", "not_in_audience", None),
        ("P2", "suppressed", "do_not_mail"),
        ("P4", "frequency_cap", "2 in the last 30 days"),
        ("P25", "holdout", None),
    ]
    assert [c.profile_id for c in diff.dropped.rows] == ["P6", "P7"]


@pytest.mark.parametrize(
    ("identity", "run", "line"),
    [
        ("P1", None, f"P1 in {B}: mailed, in out.csv"),
        ("P12", None, f"P12 in {B}: held out (in the audience, not mailed: the campaign's holdout)"),
        ("P2", None, f"P2 in {B}: excluded as suppressed (do_not_mail)"),
        ("P4", B, f"P4 in {B}: excluded as frequency_cap (2 in the last 30 days)"),
        ("P7", A, f"P7 in {A}: excluded as no_postal_consent"),
        ("P5", None, f"P5 in {B}: not in the audience (no row of campaign for this profile in that run)"),
        ("P5", A, f"P5 in {A}: mailed, in out.csv"),
    ],
)
def test_explain_says_why_in_one_line(runs, identity, run, line):
    assert read(runs, lambda w: explain(w, "campaign", identity, run)).line == line


@pytest.mark.parametrize(
    ("run_a", "run_b", "message"),
    [
        ("campaign@2020-01-01T00:00:00Z", None, "no run 'campaign@2020-01-01T00:00:00Z' recorded"),
        (f"other@{OTHER_RUN}", None, f"run 'other@{OTHER_RUN}' is a run of campaign other, not of campaign"),
        (B, None, f"nothing to compare: {B} is the latest committed run"),
        (A, A, f"nothing to compare: {A} is both runs"),
    ],
)
def test_diff_refuses_runs_it_cannot_compare(runs, run_a, run_b, message):
    with pytest.raises(DirectMailError, match="^" + re.escape(message)):
        read(runs, lambda w: choose_runs(w, "campaign", run_a, run_b))


def test_a_campaign_with_one_committed_run_cannot_be_diffed(runs):
    with pytest.raises(
        DirectMailError, match=re.escape("campaign other has 1 committed run(s): a diff needs two")
    ):
        read(runs, lambda w: choose_runs(w, "other"))
    assert [r.run_id for r in read(runs, lambda w: committed_runs(w, "campaign"))] == [A, B]


def test_a_failed_run_is_not_committed(runs):
    runs.sql(f"update direct_mail.runs set status = 'failed', committed_attempt = null where run_id = '{A}'")
    with pytest.raises(DirectMailError, match=f"^run '{A}' is failed: nothing of it was committed"):
        read(runs, lambda w: explain(w, "campaign", "P1", A))
    with pytest.raises(DirectMailError, match="has 1 committed run"):
        read(runs, lambda w: choose_runs(w, "campaign"))


# -- the CLI, in process, on the sample project's profile pointed at the runs' warehouse ----------------


@pytest.fixture
def cli(runs: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    project = copy_project_files(tmp_path / "project")
    monkeypatch.setenv("DIRECTMAIL_WAREHOUSE", str(runs.database))
    monkeypatch.setenv("COLUMNS", "80")

    def invoke(*args: str):
        from directmail.cli import app

        return CliRunner().invoke(app, ["--project-dir", str(project), *args])

    return invoke


def test_cli_diff_and_explain(cli, runs):
    result = cli("diff", "campaign")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[:9] == [
        "campaign: campaign",
        f"run a: {A} (delivered): mailed 6, held out 1",
        f"run b: {B} (delivered): mailed 4, held out 2",
        "added: 2",
        "  not_in_audience: 1",
        "  no_postal_consent: 1",
        "dropped: 4",
        "  not_in_audience: 1",
        "  suppressed: 1",
    ]
    assert "P4: excluded as frequency_cap (2 in the last 30 days) in run b" in result.stdout.splitlines()

    as_json = cli("diff", "campaign", A, B, "--json", "--limit", "2")
    assert as_json.exit_code == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    expected = read(runs, lambda w: diff_runs(w, "campaign", *choose_runs(w, "campaign"), limit=2))
    assert document == to_json(expected)
    assert document["run_b"] == {
        "run_id": B,
        "run_time": RUN_2,
        "status": "delivered",
        "mailed": 4,
        "holdout": 2,
    }
    assert document["dropped"]["count"] == 4 and len(document["dropped"]["rows"]) == 2
    assert document["dropped"]["rows"][1] == {
        "profile_id": "P2",
        "reason": "suppressed",
        "detail": "do_not_mail",
        "file_name": "out.csv",
    }

    line = cli("explain", "campaign", "P2")
    assert line.exit_code == 0 and line.stdout == f"P2 in {B}: excluded as suppressed (do_not_mail)\n"
    explained = json.loads(cli("explain", "campaign", "P1", "--run", A, "--json").stdout)
    assert explained == {
        "campaign": "campaign",
        "run_id": A,
        "profile_id": "P1",
        "outcome": "mailed",
        "file_name": "out.csv",
        "reason": None,
        "detail": None,
        "line": f"P1 in {A}: mailed, in out.csv",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diff", "other"], "error: campaign other has 1 committed run(s): a diff needs two"),
        (["diff", "campaign", "nosuch@1"], "error: no run 'nosuch@1' recorded"),
        (["explain", "nosuch", "P1"], "error: no committed run of campaign nosuch (delivered or empty)"),
        (["explain", "campaign", "P1", "--run", "nosuch@1", "--json"], "error: no run 'nosuch@1' recorded"),
    ],
)
def test_cli_errors_exit_1_with_the_message_on_stderr(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message)


def test_cli_report_json(cli):
    result = cli("report", "campaign", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    run = document["run"]
    assert (run["run_id"], run["status"], run["run_time"]) == (B, "delivered", RUN_2)
    assert (run["targeted"], run["exported"], run["holdout"], run["committed_attempt"]) == (8, 4, 2, 1)
    assert run["excluded"]["suppressed"] == 1 and run["excluded"]["frequency_cap"] == 1
    assert run["exclusion_details"] == {"suppressed": {"do_not_mail": 1}}
    assert [f["name"] for f in run["files"]] == ["out.csv"] and len(run["files"][0]["sha256"]) == 64
    assert run["finished_at"].endswith("Z") and run["message"] is None
    assert [r["run_id"] for r in document["earlier_runs"]] == [A]
    assert set(run) == set(document["earlier_runs"][0])


def test_cli_list_json(cli):
    result = cli("list", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["last_runs_read"] is True
    by_name = {c["campaign"]: c for c in document["campaigns"]}
    assert by_name["lapsed_postcard"] == {
        "campaign": "lapsed_postcard",
        "status": "active",
        "configuration": "mailhouse_semicolon_cp1252",
        "routing": "landing",
        "schedule": {"cron": "30 7 1 * *", "timezone": "Europe/London", "at": None},
        "last_run": None,  # the runs' warehouse holds only `campaign` and `other`
    }
