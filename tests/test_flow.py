"""The Prefect flow runs the same pipeline and publishes the report as a markdown artifact."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import duckdb

from tests.conftest import REPO, latest_artifact

RUN_TIME = "2026-11-23T06:00:00Z"


def test_flow_delivers_and_publishes_the_report_artifact(prefect_harness, sample_project):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.campaign_flow import run_campaign_flow

    record = run_campaign_flow("winter_catalog", RUN_TIME, str(sample_project))
    assert record.status == "delivered"
    delivered = sorted(p.name for p in (sample_project / "landing" / "outbound").iterdir())
    stem = f"winter_catalog_{RUN_TIME[:10].replace('-', '')}"
    assert f"{stem}.manifest.json" in delivered and f"{stem}_002.csv.sha256" in delivered
    assert set(record.step_seconds) == {"check", "build", "extract", "write", "deliver", "record"}

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["direct-mail-winter-catalog"]))
        )
    assert artifacts, "the run report artifact was not created"
    markdown = artifacts[0].data
    assert "winter_catalog@2026-11-23T06:00:00Z" in markdown
    assert f"| Exported | {record.exported:,} |" in markdown
    assert record.files[0]["sha256"] in markdown

    again = run_campaign_flow("winter_catalog", RUN_TIME, str(sample_project))
    assert again.status == "skipped" and "already delivered" in again.message


def test_fixed_width_files_and_new_entrants_as_flow_runs(prefect_harness, sample_project):
    """A fixed-width campaign the sample lacks, and the sample's new-entrants campaign, run by the flow."""
    from flows.campaign_flow import run_campaign_flow
    from tests.test_fixed_width import E2E_CONFIGURATION, E2E_MODEL, E2E_WIDTHS, _e2e_yaml
    from tests.test_sample_project import landing_files, query

    (sample_project / "models" / "campaigns" / "fixed_flyer.sql").write_text(E2E_MODEL)
    (sample_project / "models" / "campaigns" / "_fixed.yml").write_text(
        _e2e_yaml("mailhouse_fixed", E2E_WIDTHS)
    )
    config = sample_project / "direct_mail.yml"
    config.write_text(
        config.read_text().replace("\nconfigurations:\n", "\nconfigurations:" + E2E_CONFIGURATION)
    )

    fixed = run_campaign_flow("fixed_flyer", RUN_TIME, str(sample_project))
    assert fixed.status == "delivered" and fixed.exported > 100
    lines = landing_files(sample_project)["outbound/fixed_flyer.txt"].decode("utf-8").split("\r\n")
    assert lines[0] == "FIXED FLYER" and lines[-1] == ""
    assert {len(line) for line in lines[1:-1]} == {sum(E2E_WIDTHS.values())}

    first = run_campaign_flow("lapsed_postcard", RUN_TIME, str(sample_project))
    later = run_campaign_flow("lapsed_postcard", "2026-12-01T07:30:00Z", str(sample_project))
    assert first.status == "delivered" and first.exported > 0
    [(already_sent, other_run)] = query(
        sample_project,
        "select count(*), count(*) filter (where detail not like '%lapsed_postcard@2026-11-23T06:00:00Z%') "
        "from direct_mail.exclusions where run_id = 'lapsed_postcard@2026-12-01T07:30:00Z' "
        "and reason = 'already_sent'",
    )
    assert already_sent > 0 and other_run == 0  # each names the run that sent the profile
    [(mailed_twice,)] = query(
        sample_project,
        "select count(*) from (select profile_id from direct_mail.sends where campaign = 'lapsed_postcard' "
        "and not is_holdout group by profile_id having count(*) > 1)",
    )
    assert mailed_twice == 0 and later.status in ("delivered", "empty")


def test_library_never_imports_prefect():
    code = (
        "import sys, directmail.cli, directmail.pipeline, directmail.project, directmail.checks;"
        "assert not any(m == 'prefect' or m.startswith('prefect.') for m in sys.modules), 'prefect imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_routing_secret_from_a_prefect_secret_block(prefect_harness, sshd, tmp_path):
    from prefect.blocks.system import Secret

    import flows.secret_blocks  # noqa: F401  registers ${prefect:…}
    from directmail.config import SftpRouting
    from directmail.delivery import probe
    from directmail.secrets import scrub
    from tests.servers import SFTP_PASSWORD

    Secret(value=SFTP_PASSWORD).save("mailhouse-sftp-password", overwrite=True)
    routing = SftpRouting.model_validate(
        {
            "type": "sftp",
            "host": "127.0.0.1",
            "port": sshd.port,
            "username": sshd.user,
            "password": "${prefect:mailhouse-sftp-password}",
            "known_hosts": str(sshd.write_known_hosts(tmp_path / "known_hosts")),
            "directory": str(sshd.root),
        }
    )
    assert probe("mailhouse", routing, tmp_path).startswith("sftp://dmsftp@127.0.0.1")
    assert scrub(f"password was {SFTP_PASSWORD}") == "password was ***"


def test_a_failed_delivery_ends_the_flow_run_failed_with_its_reason(prefect_harness, sample_project):
    import yaml

    from flows.campaign_flow import run_campaign_flow
    from tests.test_sample_project import query

    (sample_project / "not-a-folder").write_text("a file where the landing folder should be\n")
    config_file = sample_project / "direct_mail.yml"
    config = yaml.safe_load(config_file.read_text())
    config["routing"]["landing"]["directory"] = "not-a-folder"
    config_file.write_text(yaml.safe_dump(config))

    state = run_campaign_flow("lapsed_postcard", RUN_TIME, str(sample_project), return_state=True)
    assert state.is_failed()
    assert "could not deliver postcards/lapsed_postcard_20261123_060000.txt to " in state.message
    assert state.message.endswith(": Not a directory")
    [(status, message)] = query(sample_project, "select status, message from direct_mail.runs")
    assert status == "failed" and "Not a directory" in message


def test_a_flow_run_settles_a_drop_whose_history_write_failed(prefect_harness, sample_project, monkeypatch):
    """Exactly once holds the same way as a flow run: the failed record step leaves the run settleable,
    and the next flow run of that slot records it delivered without sending anything again."""
    import duckdb

    from directmail.history import History
    from flows.campaign_flow import run_campaign_flow
    from tests.test_sample_project import query

    def disk_full(self, record):
        raise duckdb.IOException("could not write: no space left on device")

    monkeypatch.setattr(History, "commit_delivered", disk_full)
    state = run_campaign_flow("lapsed_postcard", RUN_TIME, str(sample_project), return_state=True)
    assert state.is_failed() and "no space left on device" in state.message
    landing = sample_project / "landing"
    landed = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in landing.rglob("*") if p.is_file()}
    assert any(p.name.endswith(".manifest.json") for p in landed)

    monkeypatch.undo()
    record = run_campaign_flow("lapsed_postcard", RUN_TIME, str(sample_project))
    assert record.status == "delivered" and "nothing delivered again" in record.message
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in landing.rglob("*") if p.is_file()} == landed
    [(status, exported)] = query(sample_project, "select status, exported from direct_mail.runs")
    [(sends,)] = query(sample_project, "select count(*) from direct_mail.sends where not is_holdout")
    assert status == "delivered" and sends == exported > 0


def test_a_delivery_publishes_the_changes_and_explain_answers_from_the_flow(prefect_harness, sample_project):
    """The changes artifact is the library's diff of the two runs; the explain flow publishes the line
    `directmail explain` prints, and fails with the CLI's message for an unknown run."""
    from directmail.builder import DbtProject
    from directmail.diff import since_previous
    from directmail.diff_report import to_markdown
    from directmail.explain import explain
    from directmail.reading import read_warehouse
    from flows.campaign_flow import run_campaign_flow
    from flows.inspect_flow import explain_profile
    from tests.test_sample_project import query

    first = run_campaign_flow("winter_catalog", RUN_TIME, str(sample_project))
    assert first.status == "delivered"
    assert latest_artifact("direct-mail-winter-catalog-changes").endswith(
        f"`{first.run_id}` is its first committed run: nothing to compare."
    )
    mailed = query(
        sample_project,
        f"select profile_id from direct_mail.sends where run_id = '{first.run_id}' and not is_holdout "
        "order by profile_id limit 3",
    )
    with (sample_project / "seeds" / "suppression_list.csv").open("a", encoding="utf-8") as seed:
        seed.writelines(f"do_not_mail,{profile},,,,,,,2026-11-25\n" for (profile,) in mailed)
    # The first drop as if delivered at its run time, 11 days or more ago: the campaign's 6-day frequency
    # cap, which counts delivery times near now too (I2), has passed for a run now.
    with duckdb.connect(str(sample_project / "warehouse" / "directmail.duckdb")) as con:
        con.execute(
            "update direct_mail.send_rows set sent_at = ?::timestamp where run_id = ?",
            [RUN_TIME.rstrip("Z"), first.run_id],
        )
    later = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    second = run_campaign_flow("winter_catalog", later, str(sample_project))
    assert second.status == "delivered"

    dbt = DbtProject(sample_project)
    diff = read_warehouse(dbt, lambda w: since_previous(w, "winter_catalog", second.run_id, 20))
    assert diff is not None and diff.run_a.run_id == first.run_id
    assert diff.dropped.by_reason.get("suppressed") == 3
    markdown = latest_artifact("direct-mail-winter-catalog-changes")
    assert markdown == to_markdown(diff)
    assert "| Dropped | suppressed | 3 |" in markdown

    [(profile,)] = query(
        sample_project,
        f"select profile_id from direct_mail.exclusions where run_id = '{second.run_id}' "
        "and reason = 'suppressed' and detail = 'do_not_mail' order by profile_id limit 1",
    )
    answer = explain_profile("winter_catalog", profile, project_dir=str(sample_project))
    assert answer.line == f"{profile} in {second.run_id}: excluded as suppressed (do_not_mail)"
    assert answer == read_warehouse(dbt, lambda w: explain(w, "winter_catalog", profile))
    assert latest_artifact("direct-mail-winter-catalog-explain").endswith(answer.line)

    state = explain_profile(
        "winter_catalog",
        profile,
        "winter_catalog@2020-01-01T00:00:00Z",
        str(sample_project),
        return_state=True,
    )
    assert state.is_failed() and "no run 'winter_catalog@2020-01-01T00:00:00Z' recorded" in state.message
