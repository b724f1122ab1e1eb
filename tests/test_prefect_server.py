"""Against a real `prefect server` on a free loopback port: deployments from campaign schedules, a run
triggered through the API completes in `directmail serve` and publishes its report artifact, and editing
the campaigns then serving again updates or pauses the deployments. Also: two runs on one warehouse."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.servers import free_port, wait_until
from tests.test_sample_project import landing_files, query

DIRECTMAIL = str(Path(sys.executable).parent / "directmail")


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",  # next runs appear quickly
    }
    env.pop("PREFECT_API_URL", None)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_until(healthy, 120, "prefect server")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def prefect_api(prefect_server, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
        yield prefect_server


def start_serve(project: Path, api: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [DIRECTMAIL, "--project-dir", str(project), "serve"],
        env={**os.environ, "PREFECT_API_URL": api},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def read_deployments(client) -> dict:
    return {d.name: d for d in client.read_deployments() if d.flow_id and "directmail" in d.tags}


def test_serve_creates_deployments_runs_on_demand_and_follows_edits(sample_project, prefect_api, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.deployments import run_deployment

    serving = start_serve(sample_project, prefect_api, tmp_path / "serve.log")
    try:
        with get_client(sync_client=True) as client:
            wait_until(lambda: len(read_deployments(client)) == 3, 120, "deployments")
            deployments = read_deployments(client)
            explain = deployments["explain"]  # run from the UI with a campaign and an identity
            assert explain.schedules == [] and explain.parameters == {"project_dir": str(sample_project)}
            winter = deployments["winter_catalog"]
            assert [(s.schedule.cron, s.schedule.timezone) for s in winter.schedules] == [
                ("0 6 * * 1", "Europe/Paris")
            ]
            lapsed = deployments["lapsed_postcard"]
            assert [(s.schedule.cron, s.schedule.timezone) for s in lapsed.schedules] == [
                ("30 7 1 * *", "Europe/London")
            ]
            assert winter.parameters == {
                "campaign": "winter_catalog",
                "project_dir": str(sample_project.resolve()),
            }

            def upcoming() -> list:
                return client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[winter.id])),
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["SCHEDULED"]))
                    ),
                )

            wait_until(lambda: len(upcoming()) >= 3, 60, "next runs")
            paris = [r.expected_start_time.astimezone(ZoneInfo("Europe/Paris")) for r in upcoming()]
            assert all((t.weekday(), t.hour, t.minute) == (0, 6, 0) for t in paris)  # Mondays 06:00 in Paris

            flow_run = run_deployment("direct-mail-campaign/winter_catalog", timeout=240, poll_interval=2)
            assert flow_run.state.is_completed(), (tmp_path / "serve.log").read_text()[-3000:]
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["direct-mail-winter-catalog"]))
            )
        run_time = flow_run.expected_start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        [(run_id, status, exported)] = query(
            sample_project, "select run_id, status, exported from direct_mail.runs"
        )
        assert (run_id, status) == (
            f"winter_catalog@{run_time}",
            "delivered",
        )  # the slot's time is the run time
        assert artifacts and f"| Exported | {exported:,} |" in artifacts[0].data
        assert f"winter_catalog_{run_time[:10].replace('-', '')}.manifest.json" in str(
            landing_files(sample_project)
        )
    finally:
        stop(serving)

    # edit: winter_catalog moves to Tuesdays in New York, lapsed_postcard becomes a draft
    models = sample_project / "models" / "campaigns" / "_campaigns__models.yml"
    text = models.read_text()
    text = text.replace(
        'schedule: {cron: "0 6 * * 1", timezone: Europe/Paris}',
        'schedule: {cron: "0 9 * * 2", timezone: America/New_York}',
    )
    document = yaml.safe_load(text)
    lapsed_meta = next(m for m in document["models"] if m["name"] == "lapsed_postcard")["config"]["meta"]
    lapsed_meta["direct_mail"]["status"] = "draft"
    models.write_text(yaml.safe_dump(document, sort_keys=False))

    serving = start_serve(sample_project, prefect_api, tmp_path / "serve-again.log")
    try:
        with get_client(sync_client=True) as client:

            def updated() -> bool:
                winter = read_deployments(client)["winter_catalog"]
                return [s.schedule.cron for s in winter.schedules] == ["0 9 * * 2"]

            wait_until(updated, 120, "updated deployment")
            deployments = read_deployments(client)
            assert deployments["winter_catalog"].schedules[0].schedule.timezone == "America/New_York"
            assert deployments["lapsed_postcard"].paused
        assert (
            "paused direct-mail-campaign/lapsed_postcard: campaign is a draft"
            in (tmp_path / "serve-again.log").read_text()
        )
    finally:
        stop(serving)


def test_deploy_registers_for_a_work_pool(sample_project, prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from tests.test_sample_project import cli

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="mail-workers", type="process"), overwrite=True)
    result = cli(sample_project, "deploy", "--work-pool", "mail-workers")
    assert result.exit_code == 0, result.output
    assert (
        "deployment direct-mail-campaign/winter_catalog: 0 6 * * 1 (Europe/Paris) on work pool mail-workers"
        in result.output
    )
    with get_client(sync_client=True) as client:
        winter = client.read_deployment_by_name("direct-mail-campaign/winter_catalog")
    assert winter.work_pool_name == "mail-workers"
    assert winter.entrypoint == "flows/campaign_flow.py:run_campaign_flow"


def test_two_runs_on_one_warehouse_take_turns(sample_project):
    """Without the lock the second process fails on DuckDB's file lock; with it, it waits."""
    commands = [
        [DIRECTMAIL, "--project-dir", str(sample_project), "run", name, "--run-time", "2026-11-23T06:00:00Z"]
        for name in ("winter_catalog", "lapsed_postcard")
    ]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    processes = [
        subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for c in commands
    ]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    statuses = query(sample_project, "select campaign, status from direct_mail.runs order by campaign")
    assert statuses == [("lapsed_postcard", "delivered"), ("winter_catalog", "delivered")]
