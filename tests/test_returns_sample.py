"""Returns on the sample project end to end: a run, a return file through the CLI, the next run's
exclusions, and the reporting model campaign_return_rates."""

from __future__ import annotations

import contextlib

from tests.test_sample_project import cli, query

RUN_TIME = "2026-11-23T06:00:00Z"


def dbt_build(project, *select: str) -> None:
    from dbt.cli.main import dbtRunner

    from directmail.builder import release_connections

    with contextlib.chdir(project):
        where = ["--project-dir", str(project), "--profiles-dir", str(project)]
        result = dbtRunner().invoke(["build", "--select", *select, *where, "--log-level", "none"])
    release_connections()
    results = result.result.results
    failures = [
        (r.node.unique_id, r.status, r.message) for r in results if r.status not in ("success", "pass")
    ]
    assert result.success and not failures, failures


def test_returns_suppress_the_next_run_and_feed_the_return_rates(sample_project, tmp_path):
    first = cli(sample_project, "run", "lapsed_postcard", "--run-time", RUN_TIME)
    assert first.exit_code == 0, first.output
    run_id = "lapsed_postcard@2026-11-23T06:00:00Z"
    mailed = [
        row[0]
        for row in query(
            sample_project,
            f"select profile_id from direct_mail.sends where run_id = '{run_id}' and not is_holdout "
            "order by profile_id limit 3",
        )
    ]
    [(pieces,)] = query(sample_project, f"select exported from direct_mail.runs where run_id = '{run_id}'")
    moved, deceased, early = mailed
    returns = tmp_path / "returns_2026-11.csv"
    returns.write_text(
        "identity,reason,returned_at\n"
        f"{moved},moved\n"  # returned_at: the ingest time, after the piece was sent
        f"{deceased},deceased\n"
        f"{deceased},undeliverable\n"  # the same piece again: counted once, as deceased
        f"{early},refused,2026-01-01\n"  # before any piece was mailed: matched to no run
        "NOT-A-PROFILE,moved\n"
    )
    ingested = cli(sample_project, "returns", "ingest", str(returns))
    assert ingested.exit_code == 0, ingested.output
    assert "returns_2026-11.csv: 5 return(s), 5 new" in ingested.stdout

    dbt_build(sample_project, "+campaign_return_rates")
    rates = query(
        sample_project,
        "select campaign, run_id, pieces_mailed, returned_pieces, return_rate_percent, undeliverable, "
        "moved, deceased, refused from main.campaign_return_rates",
    )
    assert rates == [
        ("lapsed_postcard", run_id, pieces, 2, round(200.0 / pieces, 2), 0, 1, 1, 0),
    ]

    later = cli(sample_project, "run", "lapsed_postcard", "--run-time", "2026-11-30T06:00:00Z")
    assert later.exit_code == 0, later.output
    suppressed = query(
        sample_project,
        "select profile_id, reason, detail from direct_mail.exclusions "
        "where run_id = 'lapsed_postcard@2026-11-30T06:00:00Z' and detail like 'return:%' order by 1",
    )
    assert suppressed == sorted(
        [(moved, "suppressed", "return:moved"), (deceased, "suppressed", "return:deceased"),
         (early, "suppressed", "return:refused")]
    )  # fmt: skip
