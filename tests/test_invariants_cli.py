"""The invariants through the CLI, on the sample project, as an operator and a mail house act.

Each test reproduces a way a drop was lost, or a person mailed twice, next to the named cases that held:
another run id under the same names (I1), a crash after the manifest followed by the next slot (I3), a
mail house that takes the files before the crashed run is settled (I4), run times that are not now (I2).
Return files at any size (I6) are in tests/test_returns_invariant.py; the randomized sequences that check
all of them after every step are in tests/test_invariant_sequences.py.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from directmail.cli import app
from tests.conftest import copy_sample_project

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
EARLY, LATE = TODAY + timedelta(hours=5), TODAY + timedelta(hours=8)
CAMPAIGN = "winter_catalog"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def cli(project: Path, *args: str):
    return CliRunner().invoke(app, ["--project-dir", str(project), *args], catch_exceptions=False)


def cli_killed_at(project: Path, fault: str, *args: str) -> subprocess.CompletedProcess:
    """The command in a child process that SIGKILLs itself just after `fault`'s file landed."""
    spec = {"fault": fault, "cli": ["--project-dir", str(project), *args]}
    return subprocess.run(
        [sys.executable, "-m", "tests.fault_run", json.dumps(spec)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def query(project: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(project / "warehouse" / "directmail.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def landing(project: Path) -> dict[str, bytes]:
    root = project / "landing"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def take_drop(project: Path, inbox: Path) -> dict[str, bytes]:
    """What a mail house does: move every delivered file out of the landing folder into its own."""
    taken = landing(project)
    for name in taken:
        target = inbox / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(project / "landing" / name, target)
    return taken


def sent(project: Path, run_time: datetime) -> set[str]:
    rows = query(
        project,
        f"select profile_id from direct_mail.sends where run_id = '{CAMPAIGN}@{iso(run_time)}' "
        "and not is_holdout",
    )
    return {profile for (profile,) in rows}


def status(project: Path, run_time: datetime) -> str | None:
    rows = query(project, f"select status from direct_mail.runs where run_id = '{CAMPAIGN}@{iso(run_time)}'")
    return rows[0][0] if rows else None


def manifest_name(run_time: datetime) -> str:
    return f"outbound/{CAMPAIGN}_{run_time:%Y%m%d}.manifest.json"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The sample project, built once by a dry run (nothing delivered or recorded)."""
    project = copy_sample_project(tmp_path_factory.mktemp("built") / "project")
    result = cli(project, "run", CAMPAIGN, "--dry-run", "--run-time", iso(EARLY))
    assert result.exit_code == 0, result.output
    shutil.rmtree(project / ".directmail" / "dry-run", ignore_errors=True)
    return project


@pytest.fixture
def project(built, tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("DIRECTMAIL_WAREHOUSE", raising=False)
    return Path(shutil.copytree(built, tmp_path / "project", symlinks=True))


def add_profiles(project: Path, count: int) -> None:
    """New people in the CRM: copies (profile, consents, orders) of consenting profiles, their ids
    starting with N, each at an address of its own, who ordered yesterday."""
    with duckdb.connect(str(project / "warehouse" / "directmail.duckdb")) as con:
        con.execute(
            "create temporary table picked as select distinct p.profile_id from raw_crm.profiles as p "
            "join raw_crm.consents as c on c.profile_id = p.profile_id and c.marketing_action = 'direct_mail' "
            "and c.consent_value = 'y' join raw_crm.orders as o on o.profile_id = p.profile_id "
            f"where p.country_code = 'FR' order by 1 limit {count}"
        )
        for table in ("profiles", "consents", "orders"):
            con.execute(
                f"create temporary table new_{table} as select * from raw_crm.{table} "
                "where profile_id in (select profile_id from picked)"
            )
            con.execute(f"update new_{table} set profile_id = 'N' || substr(profile_id, 2)")
        con.execute("update new_orders set order_id = profile_id || substr(order_id, strpos(order_id, '-'))")
        con.execute("update new_profiles set address_line_1 = '9' || address_line_1")
        con.execute("update new_orders set ordered_at = cast(current_date as timestamp) - interval 1 day")
        for table in ("profiles", "consents", "orders"):
            con.execute(f"insert into raw_crm.{table} select * from new_{table}")


def test_a_later_run_id_under_the_same_names_stops_instead_of_deleting_a_delivered_drop(project, tmp_path):
    first = cli(project, "run", CAMPAIGN, "--run-time", iso(EARLY), "--skip-build")
    assert first.exit_code == 0, first.output
    delivered = landing(project)
    mailed = sent(project, EARLY)
    assert manifest_name(EARLY) in delivered and len(mailed) > 500

    add_profiles(project, 3)
    later = cli(project, "run", CAMPAIGN, "--run-time", iso(LATE))
    assert later.exit_code == 1
    assert f"{CAMPAIGN}@{iso(EARLY)}" in later.output and "on_existing: replace" in later.output
    assert landing(project) == delivered  # the delivered drop is untouched
    assert status(project, LATE) is None and sent(project, EARLY) == mailed

    take_drop(project, tmp_path / "mailhouse")  # once the mail house has taken it, the slot runs
    again = cli(project, "run", CAMPAIGN, "--run-time", iso(LATE))  # refused before its build: builds now
    assert again.exit_code == 0, again.output
    assert status(project, LATE) == "delivered"
    assert sent(project, LATE) and not sent(project, LATE) & mailed
    assert {profile[0] for profile in sent(project, LATE)} == {"N"}  # the others are capped


def test_a_drop_crashed_after_its_manifest_is_settled_before_the_next_slot_extracts(project, tmp_path):
    child = cli_killed_at(
        project, f"after:{manifest_name(EARLY)}", "run", CAMPAIGN, "--run-time", iso(EARLY), "--skip-build"
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert status(project, EARLY) == "delivering"
    delivered = landing(project)

    later = cli(project, "run", CAMPAIGN, "--run-time", iso(LATE), "--skip-build")
    assert later.exit_code == 1  # the crashed drop is recorded delivered, and it is in the way
    assert status(project, EARLY) == "delivered"
    mailed = sent(project, EARLY)
    assert len(mailed) > 500 and landing(project) == delivered
    assert status(project, LATE) is None

    take_drop(project, tmp_path / "mailhouse")
    again = cli(project, "run", CAMPAIGN, "--run-time", iso(LATE), "--skip-build")
    assert again.exit_code == 0, again.output
    assert status(project, LATE) == "empty"  # everyone was mailed three hours ago: capped
    assert sent(project, EARLY) == mailed


def test_a_mail_house_that_takes_the_files_of_a_crashed_run_does_not_get_them_twice(project, tmp_path):
    child = cli_killed_at(
        project, f"after:{manifest_name(EARLY)}", "run", CAMPAIGN, "--run-time", iso(EARLY), "--skip-build"
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    taken = take_drop(project, tmp_path / "mailhouse")
    assert manifest_name(EARLY) in taken

    again = cli(project, "run", CAMPAIGN, "--run-time", iso(EARLY), "--skip-build")
    assert again.exit_code == 0, again.output
    assert "nothing delivered again" in " ".join(again.output.split())
    assert landing(project) == {}  # nothing delivered a second time
    assert status(project, EARLY) == "delivered"
    rows = json.loads(taken[manifest_name(EARLY)])["total_rows"]
    seed_rows = query(
        project, f"select seed_rows from direct_mail.runs where run_id = '{CAMPAIGN}@{iso(EARLY)}'"
    )
    assert len(sent(project, EARLY)) == rows - seed_rows[0][0]


def test_the_frequency_cap_holds_for_run_times_that_are_not_now(project):
    first = cli(project, "run", CAMPAIGN, "--run-time", iso(EARLY), "--skip-build")
    assert first.exit_code == 0, first.output
    mailed = sent(project, EARLY)

    far = datetime(2062, 12, 7, 5, tzinfo=UTC)
    refused = cli(project, "run", CAMPAIGN, "--run-time", iso(far), "--skip-build")
    assert refused.exit_code == 1 and "--allow-future" in refused.output
    assert status(project, far) is None

    forced = cli(project, "run", CAMPAIGN, "--run-time", iso(far), "--skip-build", "--allow-future")
    assert forced.exit_code == 0, forced.output
    assert not sent(project, far) & mailed  # sent today: capped whatever the run time says


def test_two_future_slots_a_week_apart_do_not_mail_the_same_people_under_a_30_day_cap(project):
    models = project / "models" / "campaigns" / "_campaigns__models.yml"
    text = models.read_text()
    models.write_text(
        text.replace("frequency_cap: {count: 1, days: 6}", "frequency_cap: {count: 1, days: 30}")
    )
    march_1, march_8 = datetime(2027, 3, 1, 6, tzinfo=UTC), datetime(2027, 3, 8, 6, tzinfo=UTC)
    for moment in (march_1, march_8):
        result = cli(project, "run", CAMPAIGN, "--run-time", iso(moment), "--skip-build", "--allow-future")
        assert result.exit_code == 0, result.output
    assert sent(project, march_1) and not sent(project, march_1) & sent(project, march_8)


@pytest.mark.parametrize(
    ("value", "reason"),
    [("0001-01-01T00:00:00+01:00", "out of range"), ("1969-12-31T23:59:59Z", "before 1970")],
)
def test_a_run_time_before_1970_is_a_usage_error(project, value, reason):
    result = cli(project, "run", CAMPAIGN, "--run-time", value, "--skip-build")
    assert result.exit_code == 2 and reason in result.output
