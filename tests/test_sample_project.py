"""End to end on the sample dbt project: dbt build with its tests, then the CLI as a user runs it."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from directmail.builder import DbtProject
from directmail.cli import app

RUN_TIME = "2026-11-23T06:00:00Z"


def cli(project: Path, *args: str):
    return CliRunner().invoke(app, ["--project-dir", str(project), *args], catch_exceptions=False)


def landing_files(project: Path) -> dict[str, bytes]:
    root = project / "landing"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def query(project: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(project / "warehouse" / "directmail.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def plain_dbt_build(project: Path):
    """`dbt build` as an analytics engineer runs it: no directmail involved."""
    from dbt.cli.main import dbtRunner

    from directmail.builder import release_connections

    with contextlib.chdir(project):  # profiles.yml's warehouse path is relative to the project
        result = dbtRunner().invoke(
            ["build", "--project-dir", str(project), "--profiles-dir", str(project), "--log-level", "none"]
        )
    release_connections()
    return result


VALIDATE = "directmail addresses validate"


def test_plain_dbt_build_passes_on_a_fresh_sample(sample_project):
    # `dbt build` as a user or CI types it, right after `make sample`: no address validated yet. Every
    # model builds and every test passes; the addresses still pending are one warning naming the command.
    dbt = Path(sys.executable).with_name("dbt")
    built = subprocess.run(
        [str(dbt), "build", "--profiles-dir", ".", "--no-use-colors"],
        cwd=sample_project,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert re.search(r"Done\. PASS=\d+ WARN=1 ERROR=0 SKIP=0", built.stdout), built.stdout
    results = json.loads((sample_project / "target" / "run_results.json").read_text())["results"]
    assert [r["unique_id"] for r in results if r["status"] in ("fail", "error")] == []
    warned = {r["unique_id"].split(".")[2]: r["message"] for r in results if r["status"] == "warn"}
    assert list(warned) == ["assert_collected_addresses_are_validated"]
    collected = query(sample_project, "select count(*) from main.int_addresses_collected")[0][0]
    assert warned["assert_collected_addresses_are_validated"].startswith(f"Got {collected} results")
    assert all(VALIDATE in message for message in warned.values())
    warning = built.stdout[built.stdout.index("Warning in test assert_collected_addresses_are_validated") :]
    assert VALIDATE in warning.splitlines()[1]  # dbt's own summary names the command

    # Pending, never mailed: a run that skips its build (and so validates nothing) excludes every such
    # profile as invalid_address, address:not_validated, and exports nobody.
    addressed = query(sample_project, "select distinct address_errors from main.int_profiles_addressed")
    assert addressed == [("address:not_validated",)]
    dry = cli(sample_project, "run", "winter_catalog", "--skip-build", "--dry-run", "--run-time", RUN_TIME)
    assert dry.exit_code == 0, dry.output
    assert re.search(r"^  address:not_validated: [1-9]", dry.output, re.MULTILINE), dry.output
    assert "\nexported: 0\n" in dry.output, dry.output  # piped: `key: value` lines, as `report` prints
    assert dry.output.startswith(f"run: winter_catalog@{RUN_TIME}\nstatus: dry run: empty\n")


def source_freshness(project: Path) -> tuple[int, dict[str, str]]:
    """`dbt source freshness` as a user types it: its exit code and each source table's status."""
    dbt = Path(sys.executable).with_name("dbt")
    checked = subprocess.run(
        [str(dbt), "source", "freshness", "--profiles-dir", ".", "--no-use-colors"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    results = json.loads((project / "target" / "sources.json").read_text())["results"]
    return checked.returncode, {r["unique_id"].split(".", 2)[2]: r["status"] for r in results}


def test_crm_freshness_passes_on_a_fresh_sample_and_flags_a_late_export(sample_project):
    # Right after `make sample` the CRM is fresh: every raw_crm table was stamped with its load time.
    assert source_freshness(sample_project) == (
        0,
        {"crm.profiles": "pass", "crm.consents": "pass", "crm.orders": "pass"},
    )

    def loaded_hours_ago(table: str, hours: int) -> None:
        with duckdb.connect(str(sample_project / "warehouse" / "directmail.duckdb")) as con:
            con.execute(f"update raw_crm.{table} set _loaded_at = _loaded_at - interval {hours} hour")

    # A daily export: a day and a few hours late warns (the command still succeeds), two days fails.
    loaded_hours_ago("orders", 27)
    code, statuses = source_freshness(sample_project)
    assert (code, statuses["crm.orders"], statuses["crm.profiles"]) == (0, "warn", "pass")
    loaded_hours_ago("consents", 51)
    code, statuses = source_freshness(sample_project)
    assert (code, statuses["crm.consents"], statuses["crm.orders"]) == (1, "error", "warn")


def test_dbt_build_runs_models_data_tests_and_unit_tests(sample_project):
    # A fresh warehouse: the address validations table exists, empty. Every model builds; the one test
    # that finds addresses pending warns (dbt prints the command), nothing fails.
    fresh = plain_dbt_build(sample_project)
    assert fresh.success
    statuses = {r.node.name: str(r.status) for r in fresh.result.results}
    assert [name for name, status in statuses.items() if status in ("fail", "error")] == []
    assert [name for name, status in statuses.items() if status == "warn"] == [
        "assert_collected_addresses_are_validated"
    ]
    assert cli(sample_project, "addresses", "validate").exit_code == 0

    result = plain_dbt_build(sample_project)
    assert result.success
    kinds = {}
    for node_result in result.result.results:
        kinds.setdefault(node_result.node.resource_type, []).append(str(node_result.status))
    # Every unit test and data test the project declares ran, and passed.
    manifest = DbtProject(sample_project).parse()
    declared_tests = [n for n in manifest.nodes.values() if n.resource_type == "test"]
    assert len(kinds["unit_test"]) == len(manifest.unit_tests) >= 7
    assert len(kinds["test"]) == len(declared_tests) >= 90
    assert set(kinds["unit_test"]) == set(kinds["test"]) == {"pass"}


def test_run_writes_files_records_history_and_is_idempotent(sample_project):
    result = cli(sample_project, "run", "lapsed_postcard", "--run-time", RUN_TIME)
    assert result.exit_code == 0, result.output
    files = landing_files(sample_project)
    stem = "postcards/lapsed_postcard_20261123_060000"
    data = files[f"{stem}.txt"]
    text = data.decode("cp1252")
    lines = text.split("\r\n")
    assert lines[0] == "Lapsed customers postcard"
    assert (
        lines[1]
        == "profile_id;Greeting;Name;Street;Address 2;Postal Code;City;Country;Last order;Lifetime value"
    )
    assert lines[-2:] == ["END OF FILE", ""]
    assert "\n" not in text.replace("\r\n", "")
    rows, seeds = lines[2:-4], lines[-4:-2]  # the seed list's two proof addresses end the file
    assert [seed.split(";")[0] for seed in seeds] == ["PROOF-FR", "PROOF-GB"]
    postal_codes = [line.split(";")[5] for line in rows]
    assert postal_codes == sorted(postal_codes)
    assert any(line.split(";")[1].startswith(("Bonjour ", "Hallo ", "Hola ", "Olá ")) for line in rows)
    manifest = json.loads(files[f"{stem}.manifest.json"])
    assert manifest["total_rows"] == len(lines) - 4

    runs = query(sample_project, "select status, targeted, exported, holdout, excluded from direct_mail.runs")
    status, targeted, exported, holdout, excluded = runs[0]
    assert status == "delivered" and exported + len(seeds) == manifest["total_rows"]
    assert targeted == exported + sum(json.loads(excluded).values())
    assert query(sample_project, "select count(*) from direct_mail.sends") == [(exported + holdout,)]
    refused = query(
        sample_project,
        """select count(*) from direct_mail.sends s join main.stg_crm__consents c using (profile_id)
           where c.marketing_action = 'direct_mail' and c.consent_value = 'n'""",
    )
    assert refused == [(0,)]

    again = cli(sample_project, "run", "lapsed_postcard", "--run-time", RUN_TIME)
    assert again.exit_code == 0
    assert "already delivered" in again.output and "nothing delivered again" in again.output
    assert landing_files(sample_project) == files

    forced = cli(sample_project, "run", "lapsed_postcard", "--run-time", RUN_TIME, "--force")
    assert forced.exit_code == 0, forced.output
    assert landing_files(sample_project)[f"{stem}.txt"] == data  # same slot, same bytes
    assert query(sample_project, "select attempt from direct_mail.runs") == [(2,)]

    # Everyone was mailed (new entrants only): a preview says why it shows no data row, on stderr.
    preview = CliRunner().invoke(
        app, ["--project-dir", str(sample_project), "preview", "lapsed_postcard", "--skip-build"]
    )
    assert preview.exit_code == 0, preview.output
    said = " ".join(preview.stderr.split())
    assert f"no row to export ({targeted:,} targeted; excluded: " in said
    assert f"{exported:,} already_sent" in said and f"{holdout:,} holdout" in said
    assert "`directmail explain lapsed_postcard IDENTITY` says why for one profile" in said
    assert preview.stdout.splitlines()[0] == "Lapsed customers postcard"

    report = cli(sample_project, "report", "lapsed_postcard")
    assert report.exit_code == 0 and "no_postal_consent" in report.output and "delivered" in report.output


def test_validate_list_and_preview(sample_project):
    validated = cli(sample_project, "validate")
    assert validated.exit_code == 0, validated.output
    assert "2 campaign(s) valid" in validated.output
    listed = cli(sample_project, "list")
    assert "winter_catalog" in listed.output and "mailhouse_csv" in listed.output
    preview = cli(sample_project, "preview", "winter_catalog", "--limit", "3", "--run-time", RUN_TIME)
    assert preview.exit_code == 0, preview.output
    lines = preview.output.splitlines()
    assert lines[0] == "Winter catalogue 2026"
    assert lines[1].startswith("first_name,last_name,address_line_1")
    assert len(lines) == 5
    assert not (sample_project / "landing").exists()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "direct_mail.yml",
            "split_threshold: 500",
            "split_threshold: 0",
            "error: direct_mail.yml: configurations.mailhouse_csv.split_threshold: Input should be greater than or equal to 1",
        ),
        (
            "direct_mail.yml",
            "    status: active\n",
            "    status: draft\n",
            "error: direct_mail.yml: configurations.mailhouse_csv.routing: routing 'landing' is a draft",
        ),
        (
            "models/campaigns/_campaigns__models.yml",
            "configuration: mailhouse_csv",
            "configuration: nope",
            "error: models/campaigns/_campaigns__models.yml: models.winter_catalog.config.meta.direct_mail."
            "configuration: configuration 'nope' is not defined in direct_mail.yml",
        ),
        (
            "models/campaigns/_campaigns__models.yml",
            'file_name: "outbound/{campaign}_{run_date}.csv"',
            "file_name: ../winter.csv",
            "error: models/campaigns/_campaigns__models.yml: models.winter_catalog.config.meta.direct_mail."
            "file_name: file_name must not contain '..', '.' or empty folders",
        ),
    ],
)
def test_bad_input_fails_validate_and_run_before_any_work(sample_project, file, old, new, expected):
    _edit(sample_project / file, old, new)
    validated = cli(sample_project, "validate")
    assert validated.exit_code == 1
    assert expected in validated.output.splitlines()
    ran = cli(sample_project, "run", "winter_catalog", "--run-time", RUN_TIME)
    assert ran.exit_code == 1
    assert expected in ran.output.splitlines()
    assert not (sample_project / "landing").exists()
    assert not query(
        sample_project, "select * from information_schema.tables where table_name = 'winter_catalog'"
    )


def test_duplicate_labels_in_the_model_stop_the_run_before_writing(sample_project):
    _edit(
        sample_project / "models/campaigns/lapsed_postcard.sql",
        "city as {{ adapter.quote('City') }},",
        "city as {{ adapter.quote('City') }},\n        postal_code as \"city\",",
    )
    ran = cli(sample_project, "run", "lapsed_postcard", "--run-time", RUN_TIME)
    assert ran.exit_code == 1
    assert re.search(r"models\.lapsed_postcard: duplicate column label 'city'", ran.output)
    assert not (sample_project / "landing").exists()
    validated = cli(sample_project, "validate", "lapsed_postcard")
    assert validated.exit_code == 1 and "duplicate column label 'city'" in validated.output


def test_a_failing_data_test_stops_the_run_and_is_recorded(sample_project):
    with duckdb.connect(str(sample_project / "warehouse" / "directmail.duckdb")) as con:
        con.execute("insert into raw_crm.profiles select * from raw_crm.profiles limit 1")
    ran = cli(sample_project, "run", "winter_catalog", "--run-time", RUN_TIME)
    assert ran.exit_code == 1
    assert "dbt build failed" in ran.output and "unique" in ran.output
    assert not (sample_project / "landing").exists()
    assert query(sample_project, "select status from direct_mail.runs") == [("failed",)]


def test_target_info_follows_env_var_in_profiles(sample_project, monkeypatch, tmp_path):
    monkeypatch.setenv("DIRECTMAIL_WAREHOUSE", str(tmp_path / "elsewhere.duckdb"))
    assert DbtProject(sample_project).target_info().duckdb_path == str(tmp_path / "elsewhere.duckdb")
