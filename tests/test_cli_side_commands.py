"""`list` and `report` only read the history: read-only, never creating the warehouse, never failing a run
that holds it, and readable when piped or 80 columns wide (run ids, schedules, file names whole)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from directmail.history import History, RunRecord
from directmail.warehouse.duckdb_warehouse import DuckDBWarehouse
from tests.conftest import copy_project_files, copy_sample_project

LATEST = "lapsed_postcard@2026-11-23T06:00:00Z"
EARLIER = "lapsed_postcard@2026-11-16T06:00:00Z"
WINTER = "winter_catalog@2026-11-23T06:00:00Z"
PART = "lapsed_postcard_20261123_060000_001.txt.gz.gpg"
SHA = "9f2c6f1d0b7e4a3c8d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4"
RUN_BUSY = "warehouse busy: a run is in progress; try again when it ends"
WRITER_BUSY = (
    "warehouse busy: another process has it open for writing (a run in progress?); try again when it ends"
)


def directmail(project: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI as an operator pipes it, in an 80-column terminal's environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("DIRECTMAIL_WAREHOUSE", "PREFECT_API_URL")}
    env["COLUMNS"] = "80"
    command = [str(Path(sys.executable).parent / "directmail"), "--project-dir", str(project), *args]
    return subprocess.run(command, env=env, cwd=project.parent, capture_output=True, text=True)


def database(project: Path) -> Path:
    return project / "warehouse" / "directmail.duckdb"


@pytest.fixture
def bare_project(tmp_path: Path) -> Path:
    """The sample dbt project before any warehouse exists."""
    return copy_project_files(tmp_path / "project")


@pytest.fixture
def generated_project(tmp_path: Path) -> Path:
    """The sample CRM generated, nothing run yet: no history tables."""
    return copy_sample_project(tmp_path / "project", profiles=200)


def record(run_id: str, day: int, files: list[dict]) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        campaign=run_id.split("@")[0],
        run_time=datetime(2026, 11, day, 6),
        status="delivered",
        started_at=datetime(2026, 11, day, 6),
        finished_at=datetime(2026, 11, day, 6, 0, 9),
        targeted=1500,
        exported=1234,
        files=files,
        configuration="mailhouse_semicolon_cp1252",
        destination="landing: local folder /srv/mail-drops/landing",
    )


def record_history(project: Path) -> None:
    with DuckDBWarehouse(database(project)) as warehouse:
        history = History(warehouse)
        history.ensure_tables()
        history.save_run(record(EARLIER, 16, [{"name": "old.txt", "rows": 1, "bytes": 2, "sha256": SHA}]))
        history.save_run(record(LATEST, 23, [{"name": PART, "rows": 1234, "bytes": 98765, "sha256": SHA}]))
        history.save_run(record(WINTER, 23, []))


@pytest.mark.slow
def test_without_a_warehouse_nothing_is_created(bare_project):
    listed = directmail(bare_project, "list")
    assert listed.returncode == 0, listed.stderr
    assert "campaign: lapsed_postcard" in listed.stdout and "campaign: winter_catalog" in listed.stdout
    assert "last run" not in listed.stdout

    reported = directmail(bare_project, "report")
    assert reported.returncode == 1
    assert reported.stderr.strip() == "no runs recorded"
    assert not (bare_project / "warehouse").exists()


@pytest.mark.slow
def test_a_warehouse_without_history_lists_no_runs(generated_project):
    before = database(generated_project).stat().st_mtime_ns
    listed = directmail(generated_project, "list")
    assert listed.returncode == 0, listed.stderr
    assert "campaign: winter_catalog" in listed.stdout and "last run" not in listed.stdout
    reported = directmail(generated_project, "report", "winter_catalog")
    assert reported.returncode == 1
    assert reported.stderr.strip() == "no runs recorded for winter_catalog"
    assert database(generated_project).stat().st_mtime_ns == before


@pytest.mark.slow
def test_piped_at_80_columns_nothing_is_cut(generated_project):
    record_history(generated_project)

    listed = directmail(generated_project, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "schedule: 30 7 1 * * (Europe/London)" in lines
    assert "schedule: 0 6 * * 1 (Europe/Paris)" in lines
    assert f"last run: {LATEST} delivered, 1,234 rows" in lines
    assert f"last run: {WINTER} delivered, 1,234 rows" in lines
    assert "configuration: mailhouse_semicolon_cp1252" in lines

    reported = directmail(generated_project, "report", "lapsed_postcard")
    assert reported.returncode == 0, reported.stderr
    lines = reported.stdout.splitlines()
    assert f"run: {LATEST}" in lines
    assert f"file: {PART}" in lines
    assert f"  sha256: {SHA}" in lines
    assert "destination: landing: local folder /srv/mail-drops/landing" in lines
    assert f"{EARLIER}: delivered, targeted 1,500, exported 1,234, finished 2026-11-16 06:00:09" in lines
    assert "…" not in listed.stdout + reported.stdout


@pytest.mark.slow
def test_a_writer_holding_the_warehouse_makes_side_commands_say_busy(generated_project):
    record_history(generated_project)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.read()",
            str(database(generated_project)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        listed = directmail(generated_project, "list")
        reported = directmail(generated_project, "report")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert "campaign: lapsed_postcard" in listed.stdout and "last run" not in listed.stdout
    assert listed.stderr.splitlines() == [f"{WRITER_BUSY} (last runs not shown)"]
    assert reported.returncode == 1
    assert reported.stderr.splitlines() == [f"error: {WRITER_BUSY}"]


@pytest.mark.slow
def test_a_run_in_progress_makes_side_commands_wait_for_nothing(generated_project):
    record_history(generated_project)
    lock = database(generated_project).with_name("directmail.duckdb.directmail-lock")
    with lock.open("a") as handle:  # what a run holds from its first step to its last
        fcntl.flock(handle, fcntl.LOCK_EX)
        listed = directmail(generated_project, "list")
        reported = directmail(generated_project, "report")
    assert listed.returncode == 0, listed.stderr
    assert "campaign: winter_catalog" in listed.stdout and "last run" not in listed.stdout
    assert listed.stderr.splitlines() == [f"{RUN_BUSY} (last runs not shown)"]
    assert reported.returncode == 1
    assert reported.stderr.splitlines() == [f"error: {RUN_BUSY}"]

    after = directmail(generated_project, "report", "--run", LATEST)
    assert after.returncode == 0 and f"run: {LATEST}" in after.stdout.splitlines()


@pytest.mark.parametrize(("width", "as_table"), [(80, False), (200, True)])
def test_a_terminal_gets_a_table_only_when_it_fits_unsqueezed(monkeypatch, width, as_table):
    import io

    from rich.console import Console

    from directmail import cli

    out = io.StringIO()
    monkeypatch.setattr(
        cli, "console", Console(file=out, width=width, force_terminal=True, color_system=None)
    )
    monkeypatch.setattr(cli.typer, "echo", lambda text: out.write(text + "\n"))
    row = {"campaign": "lapsed_postcard", "schedule": "30 7 1 * * (Europe/London)", "last run": LATEST}
    cli._print_records([row, {**row, "campaign": "winter_catalog"}], wrap={"schedule"})
    text = out.getvalue()
    assert ("┃ campaign" in text) is as_table
    assert "…" not in text and LATEST in text and "30 7 1 * * (Europe/London)" in text


@pytest.mark.parametrize("command", ["run", "preview"])
def test_an_unreadable_run_time_is_a_usage_error(tmp_path, command):
    result = directmail(tmp_path, command, "winter_catalog", "--run-time", "next monday")
    assert result.returncode == 2
    assert "error: --run-time: Invalid isoformat string: 'next monday'" in result.stderr


@pytest.mark.slow
def test_the_latest_run_is_the_latest_run_time_whenever_it_was_executed(generated_project):
    """An earlier slot run after a later one (a catch-up, a retry) is not the latest for report and list,
    as it is not for diff and explain."""
    with DuckDBWarehouse(database(generated_project)) as warehouse:
        history = History(warehouse)
        history.ensure_tables()
        history.save_run(record(LATEST, 23, []))
        caught_up = record(EARLIER, 16, [])
        caught_up.started_at = caught_up.finished_at = datetime(
            2026, 11, 24, 9
        )  # executed a day after LATEST
        history.save_run(caught_up)

    listed = directmail(generated_project, "list")
    assert f"last run: {LATEST} delivered, 1,234 rows" in listed.stdout.splitlines(), listed.stdout
    reported = directmail(generated_project, "report", "lapsed_postcard")
    lines = reported.stdout.splitlines()
    assert lines[0] == f"run: {LATEST}"
    assert f"{EARLIER}: delivered, targeted 1,500, exported 1,234, finished 2026-11-24 09:00:00" in lines


def test_a_preview_with_no_data_row_says_why():
    from directmail.cli import preview_note

    capped = record(LATEST, 23, [])
    capped.exported, capped.targeted = 0, 12
    capped.excluded = {"no_postal_consent": 2, "duplicate": 0, "frequency_cap": 9, "holdout": 1}
    assert preview_note(capped, False, 0) == (
        f"{LATEST}: no row to export (12 targeted; excluded: 2 no_postal_consent, 9 frequency_cap, 1 holdout); "
        "only the notes, header and seed rows are shown. `directmail explain lapsed_postcard IDENTITY` says "
        "why for one profile; `--run-time` previews another run time"
    )
    assert (
        preview_note(capped, True, 3) == "no test profile is in the proof: each of the 3 was left out (above)"
    )
    assert preview_note(capped, True, 0).startswith("no test profile is in the proof: the campaign's model")
    assert preview_note(record(LATEST, 23, []), False, 0) is None  # rows to show: nothing to say
