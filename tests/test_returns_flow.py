"""The returns flow pulls a routing's returns/ folder with the library and publishes what it did."""

from __future__ import annotations

from tests.conftest import latest_artifact
from tests.test_sample_project import query


def test_flow_ingests_the_folder_publishes_the_report_and_fails_on_a_refused_file(
    prefect_harness, sample_project
):
    from flows.returns_flow import pull_returns_flow, returns_deployment

    folder = sample_project / "landing" / "returns"
    folder.mkdir(parents=True)
    (folder / "week_47.csv").write_text(
        "identity,reason,returned_at\nC1,moved,2026-11-20\nC2,refused,2026-11-21\n"
    )

    report = pull_returns_flow("landing", str(sample_project))
    assert [(i.name, i.new) for i in report.ingested] == [("week_47.csv", 2)]
    markdown = latest_artifact("direct-mail-returns-landing")
    assert "1 file(s) ingested (2 new returns)" in markdown and "| week_47.csv | 2 | 2 |" in markdown
    assert query(sample_project, "select identity from direct_mail.returns order by 1") == [("C1",), ("C2",)]

    (folder / "week_48.csv").write_text("C3,moved,2026-11-27\nC4,gone,2026-11-27\n")
    state = pull_returns_flow("landing", str(sample_project), return_state=True)
    assert state.is_failed()
    assert "week_48.csv: line 2: unknown reason 'gone'" in state.message
    markdown = latest_artifact("direct-mail-returns-landing")
    assert "0 file(s) ingested (0 new returns), 1 already ingested, 1 refused" in markdown
    assert "week_48.csv: line 2: unknown reason 'gone'" in markdown
    assert query(sample_project, "select count(*) from direct_mail.returns") == [(2,)]

    deployment = returns_deployment("landing", str(sample_project), "0 7 * * *", "Europe/Paris")
    assert deployment.name == "returns-landing"
    assert deployment.parameters == {"routing": "landing", "project_dir": str(sample_project.resolve())}
    assert deployment.schedules[0].schedule.cron == "0 7 * * *"
