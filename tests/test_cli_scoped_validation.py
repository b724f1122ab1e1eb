"""A campaign with errors blocks only itself: the other campaigns validate, list and run as usual.

The sample project gets two broken drafts: one names a configuration that does not exist (its spec parses),
one has a cron no scheduler reads (its spec does not parse). The CLI runs as an operator runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_sample_project

RUN_TIME = "2026-11-23T06:00:00Z"
MODEL = "select profile_id, first_name from {{ ref('stg_crm__profiles') }}\n"
YAML = """\
version: 2

models:
  - name: spring_draft
    config:
      materialized: table
      meta:
        direct_mail:
          configuration: mailhouse_pdf
          status: draft
          file_name: outbound/spring.csv
  - name: autumn_draft
    config:
      materialized: table
      meta:
        direct_mail:
          configuration: mailhouse_csv
          status: draft
          file_name: outbound/autumn.csv
          schedule: {cron: "99 99 * * *", timezone: Europe/Paris}
"""
DRAFTS = "models/campaigns/_drafts.yml"
SPRING_ERROR = (
    f"error: {DRAFTS}: models.spring_draft.config.meta.direct_mail.configuration: "
    "configuration 'mailhouse_pdf' is not defined in direct_mail.yml"
)
AUTUMN_ERROR = (
    f"error: {DRAFTS}: models.autumn_draft.config.meta.direct_mail.schedule.cron: "
    "cron '99 99 * * *' is not valid: Bad minute"
)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = copy_sample_project(tmp_path_factory.mktemp("scoped") / "project")
    for name in ("spring_draft", "autumn_draft"):
        (project / "models" / "campaigns" / f"{name}.sql").write_text(MODEL)
    (project / DRAFTS).write_text(YAML)
    return project


def directmail(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DIRECTMAIL_WAREHOUSE", "PREFECT_API_URL")}
    command = [str(Path(sys.executable).parent / "directmail"), "--project-dir", str(project), *args]
    return subprocess.run(command, env=env, cwd=project.parent, capture_output=True, text=True)


def lines(text: str) -> list[str]:
    return text.splitlines()


@pytest.mark.slow
def test_validate_reports_every_campaign_and_each_alone(project):
    everything = directmail(project, "validate")
    assert everything.returncode == 1, everything.stdout + everything.stderr
    assert SPRING_ERROR in lines(everything.stderr)
    assert AUTUMN_ERROR in lines(everything.stderr)

    alone = directmail(project, "validate", "winter_catalog")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert "ok: 1 campaign(s) valid: winter_catalog" in alone.stdout
    assert "spring_draft" not in alone.stderr and "autumn_draft" not in alone.stderr

    broken = directmail(project, "validate", "spring_draft")
    assert broken.returncode == 1
    assert lines(broken.stderr) == [SPRING_ERROR]


@pytest.mark.slow
def test_list_marks_broken_campaigns_invalid(project):
    listed = directmail(project, "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    blocks = listed.stdout.strip().split("\n\n")
    assert "campaign: spring_draft\nstatus: invalid" in blocks
    assert "campaign: autumn_draft\nstatus: invalid" in blocks
    assert any(block.startswith("campaign: winter_catalog\nstatus: active\n") for block in blocks)
    assert "spring_draft is invalid: `directmail validate spring_draft` says why" in lines(listed.stderr)


@pytest.mark.slow
def test_other_campaigns_run_and_the_broken_one_is_refused_alone(project):
    ran = directmail(project, "run", "winter_catalog", "--run-time", RUN_TIME)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    outbound = project / "landing" / "outbound"
    manifest = json.loads(
        (outbound / f"winter_catalog_{RUN_TIME[:10].replace('-', '')}.manifest.json").read_text()
    )
    assert manifest["run_id"] == f"winter_catalog@{RUN_TIME}" and manifest["total_rows"] > 0
    assert all((outbound / item["name"]).is_file() for item in manifest["files"])

    refused = directmail(project, "run", "spring_draft", "--run-time", RUN_TIME)
    assert refused.returncode == 1
    assert lines(refused.stderr) == [SPRING_ERROR]
    assert not list(outbound.glob("spring*"))


@pytest.mark.slow
def test_serve_never_schedules_a_broken_campaign_and_says_so(project):
    from directmail.project import load_project
    from flows.serve import campaign_deployments, skipped_invalid

    loaded = load_project(project)
    assert loaded.invalid_campaigns == ["autumn_draft", "spring_draft"]
    assert [d.name for d in campaign_deployments(loaded)] == ["lapsed_postcard", "winter_catalog"]
    assert [(item.name, item.reason) for item in skipped_invalid(loaded)] == [
        ("autumn_draft", f"{AUTUMN_ERROR}; see directmail validate autumn_draft"),
        ("spring_draft", f"{SPRING_ERROR}; see directmail validate spring_draft"),
    ]
