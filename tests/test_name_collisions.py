"""I1 across campaigns: two campaigns that could write the same names at one destination are refused.

The shapes come from the layout's own naming (placeholders, timestamp, part suffix, .gz, .gpg, sidecars,
manifest), so a collision a run would meet is found however the names are spelled.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from directmail.campaign import Campaign, parse_campaign_spec
from directmail.config import DirectMailConfig
from directmail.namecollisions import collision_findings
from tests.conftest import copy_sample_project


def _config(configurations: dict[str, dict], routings: dict[str, dict] | None = None) -> DirectMailConfig:
    return DirectMailConfig.model_validate(
        {
            "routing": routings or {"landing": {"type": "local", "directory": "landing"}},
            "configurations": {
                name: {"routing": "landing", **values} for name, values in configurations.items()
            },
        }
    )


def _campaigns(**metas: dict) -> dict[str, Campaign]:
    campaigns = {}
    for name, meta in metas.items():
        spec, findings = parse_campaign_spec(name, {"configuration": "csv", **meta}, "models/c.yml")
        assert not findings, findings
        campaigns[name] = Campaign(name, spec, f"model.p.{name}", f"main.{name}", "models/c.yml")
    return campaigns


def _colliding(campaigns: dict[str, Campaign], config: DirectMailConfig, tmp_path: Path) -> dict[str, str]:
    found = collision_findings(campaigns, config, tmp_path)
    return {name: "; ".join(f"{f.level}: {f.reason}" for f in items) for name, items in found.items()}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"file_name": "out/mail.csv"}, {"file_name": "out/mail.csv"}),
        # {run_date} of one expands to digits the other holds literally
        ({"file_name": "out/mail_{run_date}.csv"}, {"file_name": "out/mail_20261123.csv"}),
        # a timestamp appended to one is a {run_time} written into the other
        ({"file_name": "out/mail.csv", "append_timestamp": True}, {"file_name": "out/mail_{run_time}.csv"}),
        # a part suffix of one is a literal of the other: mail_001.csv
        ({"file_name": "out/mail.csv"}, {"file_name": "out/mail_001.csv"}),
        # the manifest of one is a data file of the other
        ({"file_name": "out/mail.csv"}, {"file_name": "out/mail.manifest.json"}),
        # {campaign} of a second campaign named like the first one's literal
        ({"file_name": "out/second.csv"}, {"file_name": "out/{campaign}.csv"}),
    ],
)
def test_names_two_active_campaigns_could_both_write_are_an_error_on_both(tmp_path, first, second):
    campaigns = _campaigns(first=first, second=second)
    found = _colliding(campaigns, _config({"csv": {}}), tmp_path)
    assert sorted(found) == ["first", "second"]
    assert found["first"].startswith("error: file_name can expand to names campaign second also writes")
    assert found["second"].startswith("error: file_name can expand to names campaign first also writes")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"file_name": "out/{campaign}_{run_date}.csv"}, {"file_name": "out/{campaign}_{run_date}.csv"}),
        ({"file_name": "out/mail.csv"}, {"file_name": "other/mail.csv"}),
        ({"file_name": "out/mail_{run_date}.csv"}, {"file_name": "out/mail_2026112.csv"}),  # 7 digits
        ({"file_name": "out/mail.csv"}, {"file_name": "out/mail_x01.csv"}),
        ({"file_name": "out/mail.csv"}, {"file_name": "out/Mail.csv"}),
    ],
)
def test_names_that_never_meet_pass(tmp_path, first, second):
    assert _colliding(_campaigns(first=first, second=second), _config({"csv": {}}), tmp_path) == {}


def test_the_same_names_at_two_destinations_pass_and_at_one_folder_under_two_routings_do_not(tmp_path):
    routings = {
        "landing": {"type": "local", "directory": "landing"},
        "other": {"type": "local", "directory": "elsewhere"},
        "again": {"type": "local", "directory": "./landing/"},
    }
    apart = _config({"csv": {}, "other": {"routing": "other"}}, routings)
    campaigns = _campaigns(first={"file_name": "mail.csv"}, second={"file_name": "mail.csv"})
    campaigns["second"].spec = campaigns["second"].spec.model_copy(update={"configuration": "other"})
    assert _colliding(campaigns, apart, tmp_path) == {}
    together = _config({"csv": {}, "other": {"routing": "again"}}, routings)
    assert sorted(_colliding(campaigns, together, tmp_path)) == ["first", "second"]


def test_gzip_on_one_configuration_only_keeps_the_names_apart(tmp_path):
    config = _config({"csv": {}, "gz": {"compression": "gzip"}})
    campaigns = _campaigns(first={"file_name": "mail.csv"}, second={"file_name": "mail.csv"})
    campaigns["second"].spec = campaigns["second"].spec.model_copy(update={"configuration": "gz"})
    found = _colliding(campaigns, config, tmp_path)
    # mail.csv.gz never meets mail.csv, but both write mail.manifest.json
    assert "e.g. mail.manifest.json" in found["first"]


def test_a_draft_colliding_with_an_active_campaign_is_a_warning_on_each(tmp_path):
    campaigns = _campaigns(
        first={"file_name": "mail.csv"}, second={"file_name": "mail.csv", "status": "draft"}
    )
    found = _colliding(campaigns, _config({"csv": {}}), tmp_path)
    assert found["first"].startswith("warning: ") and found["second"].startswith("warning: ")


COPY_YAML = """\
version: 2

models:
  - name: winter_reprint
    config:
      materialized: table
      meta:
        direct_mail:
          configuration: mailhouse_csv
          file_name: "outbound/winter_catalog_{run_date}.csv"
"""


@pytest.mark.slow
def test_validate_refuses_a_campaign_writing_another_campaigns_names_and_the_run_stops_before_building(
    tmp_path,
):
    """Through the CLI on the sample: the copy's names are winter_catalog's, whose template holds
    {campaign}; validate names both, and running either refuses before dbt builds."""
    project = copy_sample_project(tmp_path / "project")
    (project / "models" / "campaigns" / "winter_reprint.sql").write_text(
        "select * from {{ ref('winter_catalog') }}\n"
    )
    (project / "models" / "campaigns" / "_winter_reprint.yml").write_text(COPY_YAML)

    def directmail(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DIRECTMAIL_WAREHOUSE", "PREFECT_API_URL")}
        command = [str(Path(sys.executable).parent / "directmail"), "--project-dir", str(project), *args]
        return subprocess.run(
            command, env=env, capture_output=True, text=True, cwd=project.parent, timeout=300
        )

    validated = directmail("validate")
    assert validated.returncode == 1, validated.stdout + validated.stderr
    lines = validated.stdout.splitlines() + validated.stderr.splitlines()
    expected = (
        "error: models/campaigns/_winter_reprint.yml: models.winter_reprint.config.meta.direct_mail."
        "file_name: file_name can expand to names campaign winter_catalog also writes at the same destination "
        "(e.g. outbound/winter_catalog_########.manifest.json"
    )
    assert any(line.startswith(expected) for line in lines), lines
    assert any(
        "models.winter_catalog.config.meta.direct_mail.file_name: file_name can expand" in line
        for line in lines
    )

    ran = directmail("run", "winter_reprint", "--run-time", "2026-11-23T05:00:00Z")
    assert ran.returncode == 1
    assert "campaign winter_catalog also writes" in ran.stdout + ran.stderr
    assert not (project / "landing").exists()
    with duckdb.connect(str(project / "warehouse" / "directmail.duckdb"), read_only=True) as con:
        recorded = con.execute("select count(*) from direct_mail.runs").fetchone()
    assert recorded == (0,)  # refused before the history was opened: no failed attempt either
