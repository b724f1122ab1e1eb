"""The parse cache: a fresh one answers without dbt; anything that can change the parse makes dbt parse
again, and the change is seen; a broken cache file is parsed around; YAML errors are reported without dbt.

In-process tests count dbt parses (DbtProject.parse); the CLI tests run `directmail` in a subprocess
through tests/import_probe.py and read which modules it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from directmail.builder import DbtProject
from directmail.errors import ConfigError
from directmail.project import load_project
from tests.conftest import copy_project_files, copy_sample_project

PROBE = Path(__file__).resolve().parent / "import_probe.py"
CAMPAIGNS_YML = "models/campaigns/_campaigns__models.yml"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DIRECTMAIL_WAREHOUSE", raising=False)
    return copy_project_files(tmp_path / "project")


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every dbt parse in this process, by project folder."""
    calls: list[Path] = []
    original = DbtProject.parse

    def counted(self, run_vars=None):
        calls.append(self.project_dir)
        return original(self, run_vars)

    monkeypatch.setattr(DbtProject, "parse", counted)
    return calls


def cache_files(project: Path) -> list[Path]:
    return sorted((project / ".directmail" / "cache").glob("*.json"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_fresh_cache_answers_as_the_parse_did(project, parses):
    parsed = load_project(project)
    assert len(parses) == 1 and len(cache_files(project)) == 1
    cached = load_project(project)
    assert len(parses) == 1
    assert cached.campaigns == parsed.campaigns  # specs, unique ids, relations, YAML files, parents
    assert (cached.sources, cached.seeds) == (parsed.sources, parsed.seeds)
    assert (cached.consent_relation, cached.consent_unique_id) == (
        parsed.consent_relation,
        parsed.consent_unique_id,
    )
    assert cached.campaign_findings == parsed.campaign_findings
    assert cached.dbt.target_info() == parsed.dbt.target_info()
    assert cached.dbt.target_info().duckdb_path == "warehouse/directmail.duckdb"


def test_timestamps_and_odd_keys_in_meta_come_back_as_parsed(project, parses):
    """YAML gives datetimes for unquoted timestamps; the cache hands back the same values."""
    (project / "models" / "campaigns" / "spring_flyer.sql").write_text(
        "select profile_id, first_name from {{ ref('stg_crm__profiles') }}\n"
    )
    (project / "models" / "campaigns" / "_spring.yml").write_text(
        "version: 2\nmodels:\n  - name: spring_flyer\n    config:\n      meta:\n"
        "        owner: {$ref: marketing}\n        direct_mail:\n          configuration: mailhouse_csv\n"
        "          status: draft\n          file_name: outbound/spring.csv\n"
        "          schedule: {at: 2026-12-01T06:00:00+01:00}\n"
    )
    parsed = load_project(project).campaigns["spring_flyer"]
    cached = load_project(project).campaigns["spring_flyer"]
    assert len(parses) == 1
    assert cached == parsed
    assert cached.spec.schedule.at.isoformat() == "2026-12-01T06:00:00+01:00"


def test_editing_a_model_file_is_seen(project, parses):
    load_project(project)
    model = project / "models" / "campaigns" / "winter_catalog.sql"
    model.write_text("{{ config(alias='winter_catalog_v2') }}\n" + model.read_text())
    assert load_project(project).campaigns["winter_catalog"].relation.endswith('"winter_catalog_v2"')
    assert len(parses) == 2


def test_editing_a_campaigns_meta_is_seen(project, parses):
    assert load_project(project).campaigns["winter_catalog"].spec.status == "active"
    edit(project / CAMPAIGNS_YML, "status: active", "status: draft")
    assert load_project(project).campaigns["winter_catalog"].spec.status == "draft"
    assert len(parses) == 2


def test_editing_profiles_yml_is_seen(project, parses):
    load_project(project)
    edit(project / "profiles.yml", "'warehouse/directmail.duckdb'", "'warehouse/other.duckdb'")
    reloaded = load_project(project)
    assert reloaded.dbt.target_info().duckdb_path == "warehouse/other.duckdb"
    assert reloaded.campaigns["winter_catalog"].relation.startswith('"other".')
    assert len(parses) == 2


def test_an_environment_variable_the_project_reads_is_seen(project, parses, monkeypatch, tmp_path):
    load_project(project)
    monkeypatch.setenv("DIRECTMAIL_WAREHOUSE", str(tmp_path / "elsewhere.duckdb"))
    moved = load_project(project)
    assert moved.dbt.target_info().duckdb_path == str(tmp_path / "elsewhere.duckdb")
    assert moved.campaigns["winter_catalog"].relation.startswith('"elsewhere".')
    assert DbtProject(project).target_info().duckdb_path == str(tmp_path / "elsewhere.duckdb")
    monkeypatch.setenv("DBT_SOMETHING", "1")  # any DBT_* variable counts: dbt reads its flags from them
    load_project(project)
    assert len(parses) == 3


def test_each_target_has_its_own_cache(project, parses):
    edit(
        project / "profiles.yml",
        "      threads: 2\n",
        "      threads: 2\n    other:\n      type: duckdb\n      path: warehouse/second.duckdb\n"
        "      schema: main\n      settings: {memory_limit: 512MB, s3_secret_access_key: hidden}\n",
    )
    assert load_project(project).dbt.target_info().name == "duckdb"
    other = load_project(project, "other")
    assert len(parses) == 2 and len(cache_files(project)) == 2
    assert other.dbt.target_info().name == "other"
    assert other.campaigns["winter_catalog"].relation.startswith('"second".')
    assert load_project(project).dbt.target_info().name == "duckdb"
    again = load_project(project, "other").dbt.target_info()
    assert len(parses) == 2
    assert (again.duckdb_path, again.credentials.settings) == (
        "warehouse/second.duckdb",
        {"memory_limit": "512MB"},
    )
    assert all("hidden" not in path.read_text() for path in cache_files(project))  # no secret kept


@pytest.mark.parametrize("damage", ["{not json", '{"format": 1, "nodes": {"key": 1}}', ""])
def test_a_broken_cache_file_is_parsed_around(project, parses, damage):
    expected = load_project(project).campaigns
    (cache,) = cache_files(project)
    key = json.loads(cache.read_text())["nodes"]["key"]
    cache.write_text(damage.replace('"key": 1', f'"key": "{key}", "value": [{{"name": 1}}]'))
    assert load_project(project).campaigns == expected
    assert len(parses) == 2
    assert json.loads(cache.read_text())["nodes"]["key"] == key  # rewritten


def test_meta_json_cannot_carry_is_parsed_every_time(project, parses):
    """A YAML key that is a number would come back from JSON as text: such a project is not cached."""
    edit(
        project / CAMPAIGNS_YML, "          status: active\n", "          status: active\n          1: one\n"
    )
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"direct_mail\.1: Keys should be strings"):
            load_project(project).campaign("winter_catalog")
    assert len(parses) == 2


def test_a_non_literal_env_var_name_means_no_cache(project, parses):
    (project / "macros" / "dynamic.sql").write_text(
        "{% macro dynamic(name) %}{{ env_var(name, 'x') }}{% endmacro %}\n"
    )
    load_project(project)
    load_project(project)
    assert len(parses) == 2


def test_yaml_syntax_errors_are_reported_by_file_and_line_before_dbt(project, parses):
    with (project / CAMPAIGNS_YML).open("a", encoding="utf-8") as handle:
        handle.write("  - name: broken\n    config: {meta: [\n")
    with pytest.raises(ConfigError) as raised:
        load_project(project)
    assert parses == []
    (finding,) = raised.value.findings
    assert finding.file == CAMPAIGNS_YML
    assert finding.key.startswith("line ")
    assert finding.reason.startswith("invalid YAML: ")


# -- the CLI, as a process ------------------------------------------------------------------------------


def directmail(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, set]:
    """Run a command; its result and the top-level modules it imported."""
    modules = project.parent / "modules.json"
    environment = {
        k: v for k, v in os.environ.items() if k not in ("DIRECTMAIL_WAREHOUSE", "PREFECT_API_URL")
    }
    environment |= {"IMPORT_PROBE_OUTPUT": str(modules), **(env or {})}
    command = [sys.executable, str(PROBE), "--project-dir", str(project), *args]
    result = subprocess.run(command, env=environment, cwd=project.parent, capture_output=True, text=True)
    return result, set(json.loads(modules.read_text()))


def test_read_commands_with_a_fresh_cache_do_not_import_dbt(project):
    first, imported = directmail(project, "list")
    assert first.returncode == 0, first.stderr
    assert "dbt" in imported  # no cache yet: dbt parses
    listed, imported = directmail(project, "list")
    assert (listed.returncode, listed.stdout) == (0, first.stdout)
    assert "winter_catalog" in listed.stdout
    assert "dbt" not in imported
    reported, imported = directmail(project, "report")
    assert reported.returncode == 1 and "no runs recorded" in reported.stderr  # no warehouse yet
    assert "dbt" not in imported
    edit(project / "direct_mail.yml", "format: csv", "format: cvs")
    typo, imported = directmail(project, "validate")
    assert typo.returncode == 1
    assert "error: direct_mail.yml: configurations.mailhouse_csv.format:" in typo.stderr
    assert "dbt" not in imported
    assert "pyarrow" not in imported


def test_validate_reports_a_models_yaml_typo_without_dbt(project):
    directmail(project, "list")
    edit(
        project / CAMPAIGNS_YML, "          status: active\n", "          status: active\n         oops: [\n"
    )
    result, imported = directmail(project, "validate")
    assert result.returncode == 1
    assert f"error: {CAMPAIGNS_YML}: line " in result.stderr
    assert "invalid YAML" in result.stderr
    assert "dbt" not in imported


def test_validate_compiles_only_the_campaigns_whose_code_changed_and_none_when_nothing_did(
    tmp_path, monkeypatch
):
    """The compiled SQL `validate` checks columns with is kept beside the parse: unchanged files, no dbt
    at all; a change, only the campaigns whose own code or upstream changed are compiled again."""
    monkeypatch.delenv("DIRECTMAIL_WAREHOUSE", raising=False)
    project = copy_sample_project(tmp_path / "project", profiles=200)
    compiled: list[list[str]] = []
    original = DbtProject.compile_many

    def counted(self, names, run_vars=None):
        compiled.append(sorted(names))
        return original(self, names, run_vars)

    monkeypatch.setattr(DbtProject, "compile_many", counted)

    def validate() -> None:
        from directmail.checks import check_project

        check_project(load_project(project))

    validate()
    assert compiled == [["lapsed_postcard", "winter_catalog"]]
    validate()
    assert compiled == [["lapsed_postcard", "winter_catalog"]]  # nothing changed: nothing compiled
    model = project / "models" / "campaigns" / "lapsed_postcard.sql"
    model.write_text(model.read_text() + "\n-- a comment\n")
    validate()
    assert compiled[1:] == [["lapsed_postcard"]]
    edit(project / CAMPAIGNS_YML, "holdout_percent: 5", "holdout_percent: 6")  # meta only: no SQL changed
    validate()
    assert compiled[2:] == []
    _, imported = directmail(project, "validate")
    assert "dbt" not in imported
