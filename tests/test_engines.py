"""One project, three engines, the same mail: on DuckDB, PostgreSQL and Spark the sample campaigns and a
campaign the sample lacks deliver byte-identical files and record equal history rows, and a run killed
(SIGKILL) after its drop landed but before the history recorded it is settled by the next run without
sending anything again.

Every step is a command of its own, as an operator runs it (`sampledata.generate --target`, `dbt seed`,
`directmail addresses validate`, `dbt run`, then `directmail run … --skip-build`): Spark's JVM and its
single-process Derby metastore live as long as one command. The campaign the sample lacks is a
fixed-width drop of gold-tier customers (a configuration the sample lacks too), deduplicated by
household, with a holdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import copy_project_files
from tests.test_sample_targeting import SAMPLE_FILES_SHA256

RUN_TIME = "2026-11-23T06:00:00Z"
SAMPLE_CAMPAIGNS = ("winter_catalog", "lapsed_postcard")
NEW = "gold_thank_you"
HISTORY = {
    "sends": "select run_id, campaign, profile_id, file_name, is_holdout from direct_mail.sends",
    "exclusions": "select run_id, campaign, profile_id, reason, detail from direct_mail.exclusions",
}
REPORTED = ("run_id", "status", "targeted", "excluded", "exclusion_details", "holdout", "exported", "files")

NEW_MODEL = """\
with

profiles as (

    select * from {{ ref('int_profiles_qualified') }}

)

select
    profile_id,
    last_name as {{ adapter.quote('NOM') }},
    first_name as {{ adapter.quote('PRENOM') }},
    normalized_address_line_1 as {{ adapter.quote('ADRESSE') }},
    normalized_postal_code as {{ adapter.quote('CP') }},
    normalized_city as {{ adapter.quote('VILLE') }},
    normalized_country_code as {{ adapter.quote('PAYS') }},
    {{ round_to('lifetime_value', 2) }} as {{ adapter.quote('MONTANT') }}

from profiles
where loyalty_tier = 'gold'
"""

NEW_YAML = f"""\
version: 2

models:
  - name: {NEW}
    config:
      materialized: table
      meta:
        direct_mail:
          configuration: mailhouse_fixed
          status: active
          file_name: gold/{NEW}.txt
          append_timestamp: true
          header_note: "GOLD THANK YOU"
          sort_by: ["PAYS", "CP", "MONTANT desc"]
          identity: profile_id
          export_identity: true
          holdout_percent: 20
          household: true
          household_order: ["MONTANT desc"]
          column_widths: {{profile_id: 10, NOM: 24, PRENOM: 16, ADRESSE: 40, CP: 10, VILLE: 28, PAYS: 2, MONTANT: 10}}
          address_columns:
            lines: ["ADRESSE"]
            postal_code: "CP"
            city: "VILLE"
            country: "PAYS"
"""

NEW_CONFIGURATION = """
  mailhouse_fixed:
    routing: landing
    format: fixed_width
    encoding: utf-8
    line_ending: crlf
    split_threshold: 150
    marketing_action: direct_mail
    checksums: true
    manifest: true
"""


def _has_spark() -> str | None:
    """Why the Spark engine cannot run here, or None."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("dbt.adapters.spark") is None:
        return "pyspark / dbt-spark not installed (uv sync --extra spark)"
    if shutil.which("java") is None:
        return "java is not installed (make test-servers)"
    return None


ENGINES = [
    "duckdb",
    "postgres",
    pytest.param("spark", marks=pytest.mark.skipif(_has_spark() is not None, reason=str(_has_spark()))),
]


@dataclass
class Outcome:
    files: dict[str, bytes]
    history: dict[str, list[tuple]]
    reports: dict[str, dict]


class Engine:
    """The project on one engine, driven by commands as an operator would."""

    def __init__(self, name: str, project: Path, env: dict[str, str]):
        self.name, self.project, self.env = name, project, env

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(args, cwd=self.project, env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} on {self.name}: exit {done.returncode}\n{done.stderr[-3000:]}"
            )
        return done

    def directmail(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        executable = Path(sys.executable).with_name("directmail")
        return self.command(str(executable), "--target", self.name, *args, check=check)

    def dbt(self, *args: str) -> subprocess.CompletedProcess:
        executable = Path(sys.executable).with_name("dbt")
        return self.command(str(executable), *args, "--target", self.name, "--profiles-dir", ".", "--quiet")

    def report(self, campaign: str) -> dict:
        return json.loads(self.directmail("report", campaign, "--json").stdout)["run"]

    def rows(self, sql: str) -> list[tuple]:
        module = [sys.executable, "-m", "tests.engine_process", "rows", str(self.project), self.name, sql]
        printed = self.command(*module).stdout.splitlines()
        decoded = [json.loads(line) for line in printed if line.startswith("{")]
        return sorted(
            (tuple(str(v) if v is not None else None for v in row.values()) for row in decoded), key=str
        )

    def landing(self) -> dict[str, bytes]:
        root = self.project / "landing"
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    def stamps(self, folder: str) -> dict[str, tuple[int, int]]:
        root = self.project / "landing" / folder
        return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.iterdir()}


def _environment(name: str, project: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DIRECTMAIL_WAREHOUSE" and not k.startswith("PG")}
    env.pop("PREFECT_API_URL", None)
    if name == "postgres":
        server = request.getfixturevalue("postgres")
        database = f"engines_{os.getpid()}_{project.parent.name.replace('-', '_')}"[:63].lower()
        collation = "template template0 encoding 'UTF8' locale_provider icu icu_locale 'en-US'"
        env.update(server.new_database(database, collation))
    if name == "spark":
        env.update(
            {"DIRECTMAIL_SPARK_DIR": str(project / "warehouse" / "spark"), "SPARK_LOCAL_IP": "127.0.0.1"}
        )
    return env


def _project(root: Path) -> Path:
    project = copy_project_files(root / "project")
    (project / "models" / "campaigns" / f"{NEW}.sql").write_text(NEW_MODEL, encoding="utf-8")
    (project / "models" / "campaigns" / f"_{NEW}.yml").write_text(NEW_YAML, encoding="utf-8")
    config = project / "direct_mail.yml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("\nconfigurations:\n", f"\nconfigurations:\n{NEW_CONFIGURATION}"), "utf-8")
    return project


def run_everything(name: str, root: Path, request: pytest.FixtureRequest) -> Outcome:
    project = _project(root)
    engine = Engine(name, project, _environment(name, project, request))
    engine.command(sys.executable, "-m", "sampledata.generate", "--target", name, "--profiles", "2000")
    engine.dbt("seed")
    engine.directmail("addresses", "validate")
    engine.dbt("run", "--vars", json.dumps({"run_time": RUN_TIME}))  # as the runner's build at RUN_TIME
    for campaign in SAMPLE_CAMPAIGNS:
        engine.directmail("run", campaign, "--skip-build", "--run-time", RUN_TIME)

    # Killed once the drop landed, before the history says so: the next run settles it, sending nothing.
    killed = engine.command(
        sys.executable, "-m", "tests.engine_process", "killed-at-commit",
        "--target", name, "run", NEW, "--skip-build", "--run-time", RUN_TIME, check=False,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-3000:]
    landed = engine.stamps("gold")
    assert any(n.endswith(".manifest.json") for n in landed) and len(landed) >= 3, landed
    assert engine.report(NEW)["status"] == "delivering"
    assert engine.rows(f"select profile_id from direct_mail.sends where campaign = '{NEW}'") == []

    settled = engine.directmail("run", NEW, "--skip-build", "--run-time", RUN_TIME)
    assert engine.stamps("gold") == landed, settled.stdout  # no file put again, none added
    record = engine.report(NEW)
    assert (record["status"], record["attempt"], record["committed_attempt"]) == ("delivered", 1, 1)
    again = engine.directmail("run", NEW, "--skip-build", "--run-time", RUN_TIME)
    assert "nothing to do" in again.stdout + again.stderr
    assert engine.stamps("gold") == landed

    history = {relation: engine.rows(sql) for relation, sql in HISTORY.items()}
    reports = {c: engine.report(c) for c in (*SAMPLE_CAMPAIGNS, NEW)}  # a command each (on Spark, a JVM)
    reports = {c: {k: report[k] for k in REPORTED} for c, report in reports.items()}
    return Outcome(engine.landing(), history, reports)


@pytest.fixture(scope="module")
def on_duckdb(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Outcome:
    return run_everything("duckdb", tmp_path_factory.mktemp("engine-duckdb"), request)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_delivers_the_same_mail_exactly_once(
    engine: str, on_duckdb: Outcome, tmp_path: Path, request: pytest.FixtureRequest
):
    outcome = on_duckdb if engine == "duckdb" else run_everything(engine, tmp_path, request)

    # The sample campaigns give the pinned files; the new campaign's fixed-width drop is whole.
    sample_files = {
        n: hashlib.sha256(d).hexdigest() for n, d in outcome.files.items() if n in SAMPLE_FILES_SHA256
    }
    assert sample_files == SAMPLE_FILES_SHA256
    gold = {n: d for n, d in outcome.files.items() if n.startswith("gold/") and n.endswith(".txt")}
    assert len(gold) >= 2, sorted(outcome.files)  # split at 150 records
    lines = [line for data in gold.values() for line in data.decode("utf-8").split("\r\n")[1:-1]]
    assert lines and {len(line) for line in lines} == {140}, "every record padded to the widths' sum"
    assert outcome.reports[NEW]["exported"] == len(lines)

    # Byte for byte and row for row what DuckDB delivered and recorded.
    assert outcome.files == on_duckdb.files
    assert outcome.history == on_duckdb.history
    assert outcome.reports == on_duckdb.reports
    assert len(outcome.history["sends"]) > 100 and len(outcome.history["exclusions"]) > 100
