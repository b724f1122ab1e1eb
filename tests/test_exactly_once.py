"""Exactly once, under faults: a process killed with SIGKILL at the worst moments, the history write
failing after delivery, the SFTP server dying mid-upload. Each test re-runs the same run id and asserts
both what the destination holds and what the history says.

A fault is injected in a real child process (tests/fault_run.py) that runs the real pipeline and kills
itself with SIGKILL just before or after one named file lands at the destination.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from directmail.errors import AlreadyDelivered, DeliveryError, Settled
from directmail.history import History
from tests.runner_kit import RUN_TIME, Kit

REPO = Path(__file__).resolve().parent.parent
RUN_ID = f"campaign@{RUN_TIME}"
META = {"file_name": "out.csv", "sort_by": ["profile_id"]}
SPLIT = {"split_threshold": 2000}
# Rows written by an attempt that `sends` does not show (yet): the attempt has not committed.
PENDING = "select (select count(*) from direct_mail.send_rows) - (select count(*) from direct_mail.sends)"


def run_with_fault(
    kit: Kit,
    fault: str,
    meta: dict = META,
    configuration: dict = SPLIT,
    routing: dict | None = None,
    run_time: str = RUN_TIME,
) -> subprocess.CompletedProcess:
    """Run the campaign in a child process that SIGKILLs itself at `fault` ("after:<name>" or
    "before:<name>", a destination-relative file name)."""
    spec = {"directory": str(kit.directory), "meta": meta, "configuration": configuration}
    spec |= {"routing": routing, "fault": fault, "run_time": run_time}
    return subprocess.run(
        [sys.executable, "-m", "tests.fault_run", json.dumps(spec)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def landing_state(kit: Kit) -> dict[str, tuple[bytes, int]]:
    """Each landed file's bytes and modification time: a settled run must not touch them."""
    root = kit.directory / "landing"
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def history(kit: Kit) -> dict[str, list[tuple]]:
    return {
        "runs": kit.sql("select status, attempt, exported from direct_mail.runs"),
        "sends": kit.sql("select count(*), count(distinct profile_id) from direct_mail.sends"),
        "files": kit.sql("select file_name, count(*) from direct_mail.sends group by 1 order by 1"),
        "pending": kit.sql(PENDING),
    }


def test_killed_between_the_manifest_and_the_history_commit_is_settled_without_sending_again(kit):
    kit.rows(5000)
    project = kit.project(META, SPLIT)
    child = run_with_fault(kit, "after:out.manifest.json")
    assert child.returncode == -signal.SIGKILL, child.stderr
    landed = landing_state(kit)
    assert sorted(landed) == [
        "out.manifest.json",
        *(f"out_00{i}.csv{ext}" for i in (1, 2, 3) for ext in ("", ".sha256")),
    ]
    assert kit.sql("select status, delivery_started_at is not null from direct_mail.runs") == [
        ("delivering", True)
    ]
    assert kit.sql("select count(*) from direct_mail.sends") == [(0,)]
    assert kit.sql(PENDING) == [(5000,)]

    with pytest.raises(Settled, match="recorded delivered \\(5000 rows\\), nothing delivered again"):
        kit.run(project)
    assert landing_state(kit) == landed  # same bytes, never rewritten
    assert history(kit) == {
        "runs": [("delivered", 1, 5000)],
        "sends": [(5000, 5000)],
        "files": [("out_001.csv", 2000), ("out_002.csv", 2000), ("out_003.csv", 1000)],
        "pending": [(0,)],
    }
    with pytest.raises(AlreadyDelivered):
        kit.run(project)
    assert landing_state(kit) == landed


def test_history_write_failing_after_delivery_never_makes_the_drop_deliverable_twice(kit, monkeypatch):
    kit.rows(5000)
    project = kit.project(META, SPLIT)

    def disk_full(self, record):
        raise duckdb.IOException("could not write: no space left on device")

    monkeypatch.setattr(History, "commit_delivered", disk_full)
    with pytest.raises(duckdb.IOException):
        kit.run(project)
    landed = landing_state(kit)
    assert "out.manifest.json" in landed
    assert kit.sql("select status from direct_mail.runs") == [("failed",)]
    assert kit.sql("select count(*) from direct_mail.sends") == [(0,)]

    monkeypatch.undo()  # the warehouse has room again
    with pytest.raises(Settled):
        kit.run(project)
    assert landing_state(kit) == landed
    assert history(kit)["runs"] == [("delivered", 1, 5000)]
    assert history(kit)["sends"] == [(5000, 5000)]


def test_killed_between_two_parts_is_delivered_again_and_the_crashed_parts_do_not_stay(kit):
    kit.rows(5000)
    project = kit.project(META, SPLIT)
    child = run_with_fault(kit, "before:out_002.csv")
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert sorted(landing_state(kit)) == ["out_001.csv", "out_001.csv.sha256"]  # no manifest: incomplete
    assert kit.sql("select status from direct_mail.runs") == [("delivering",)]

    kit.sql("delete from campaign where profile_id > 'P000001499'")  # fewer rows now: one part
    record = kit.run(project)
    assert (record.status, record.attempt, record.exported) == ("delivered", 2, 1500)
    files = kit.landing()
    assert sorted(files) == ["out.csv", "out.csv.sha256", "out.manifest.json"]  # the crashed part is gone
    assert files["out.csv"].count(b"\n") == 1501
    assert history(kit) == {
        "runs": [("delivered", 2, 1500)],
        "sends": [(1500, 1500)],
        "files": [("out.csv", 1500)],
        "pending": [(0,)],
    }


def test_a_later_run_id_killed_between_parts_leaves_no_part_of_an_earlier_crashed_run_beside_its_own(kit):
    """I5: run A dies before its manifest (parts 1 and 2 landed); run B, a later slot under the same
    names, settles A and removes its parts before its own first part, then dies before its second: the
    folder holds B's part 1 alone, never A's part 2 beside it."""
    kit.rows(5000)
    a = run_with_fault(kit, "before:out_003.csv", run_time="2026-11-23T05:00:00Z")
    assert a.returncode == -signal.SIGKILL, a.stderr
    assert sorted(kit.landing()) == [f"out_00{i}.csv{ext}" for i in (1, 2) for ext in ("", ".sha256")]
    a_part_2 = kit.landing()["out_002.csv"]

    b = run_with_fault(kit, "before:out_002.csv", run_time="2026-11-23T08:00:00Z")
    assert b.returncode == -signal.SIGKILL, b.stderr
    assert sorted(kit.landing()) == ["out_001.csv", "out_001.csv.sha256"]
    assert kit.sql("select run_id, status from direct_mail.runs order by run_id") == [
        ("campaign@2026-11-23T05:00:00Z", "failed"),  # settled by B: its drop never completed
        ("campaign@2026-11-23T08:00:00Z", "delivering"),
    ]

    record = kit.run(kit.project(META, SPLIT), run_time="2026-11-23T08:00:00Z")
    assert (record.status, record.attempt, record.exported) == ("delivered", 2, 5000)
    files = kit.landing()
    assert sorted(files) == [
        "out.manifest.json",
        *(f"out_00{i}.csv{ext}" for i in (1, 2, 3) for ext in ("", ".sha256")),
    ]
    assert json.loads(files["out.manifest.json"])["run_id"] == "campaign@2026-11-23T08:00:00Z"
    assert files["out_002.csv"] == a_part_2  # the same rows again, now B's and announced
    assert kit.sql("select count(*), count(distinct profile_id) from direct_mail.sends") == [(5000, 5000)]


def test_a_replaced_drop_with_fewer_parts_leaves_no_part_of_the_earlier_one(kit):
    kit.rows(5000)
    project = kit.project(META, {**SPLIT, "on_existing": "replace"})
    kit.run(project, run_time="2026-11-20T06:00:00Z")
    assert sorted(kit.landing()) == [
        "out.manifest.json",
        *(f"out_00{i}.csv{ext}" for i in (1, 2, 3) for ext in ("", ".sha256")),
    ]
    kit.sql("delete from campaign where profile_id >= 'P000003000'")
    kit.run(project, run_time="2026-11-21T06:00:00Z")
    files = kit.landing()
    assert sorted(files) == [
        "out.manifest.json",
        *(f"out_00{i}.csv{ext}" for i in (1, 2) for ext in ("", ".sha256")),
    ]
    assert json.loads(files["out.manifest.json"])["run_id"] == "campaign@2026-11-21T06:00:00Z"
    kit.sql("delete from campaign where profile_id >= 'P000000010'")
    kit.run(project, run_time="2026-11-22T06:00:00Z")
    assert sorted(kit.landing()) == ["out.csv", "out.csv.sha256", "out.manifest.json"]


def test_without_a_manifest_the_planned_files_are_the_marker(kit):
    kit.rows(5000)
    configuration = {**SPLIT, "manifest": False}
    project = kit.project(META, configuration)
    child = run_with_fault(kit, "after:out_003.csv.sha256", configuration=configuration)
    assert child.returncode == -signal.SIGKILL, child.stderr
    landed = landing_state(kit)
    with pytest.raises(Settled):
        kit.run(project)
    assert landing_state(kit) == landed
    assert history(kit)["runs"] == [("delivered", 1, 5000)]


def test_a_settled_run_delivered_again_with_force_replaces_its_sends(kit):
    kit.rows(3000)
    project = kit.project(META, SPLIT)
    assert run_with_fault(kit, "after:out.manifest.json").returncode == -signal.SIGKILL
    record = kit.run(project, force=True)
    assert (record.status, record.attempt) == ("delivered", 2)
    assert history(kit)["sends"] == [(3000, 3000)]
    assert history(kit)["runs"] == [("delivered", 2, 3000)]


# -- SFTP ------------------------------------------------------------------------------------------------


@pytest.fixture
def sftp(sshd, tmp_path, monkeypatch):
    from tests.servers import SFTP_PASSWORD
    from tests.test_delivery_sftp import sftp_routing

    monkeypatch.setenv("SFTP_PASSWORD", SFTP_PASSWORD)
    return sftp_routing(sshd, sshd.write_known_hosts(tmp_path / "known_hosts"))


def server_state(sshd) -> dict[str, bytes]:
    return {name.removeprefix("inbound/"): data for name, data in sshd.holds().items()}


def test_sftp_killed_after_the_manifest_is_settled_from_the_server(kit, sshd, sftp):
    kit.rows(5000)
    project = kit.project(META, SPLIT, routing=sftp)
    child = run_with_fault(kit, "after:out.manifest.json", routing=sftp)
    assert child.returncode == -signal.SIGKILL, child.stderr
    held = server_state(sshd)
    assert json.loads(held["out.manifest.json"])["run_id"] == RUN_ID
    with pytest.raises(Settled):
        kit.run(project)
    assert server_state(sshd) == held
    assert history(kit)["runs"] == [("delivered", 1, 5000)]
    assert history(kit)["sends"] == [(5000, 5000)]


def test_sftp_server_killed_mid_upload_then_back_delivers_once(kit, sshd, sftp):
    """The server dies while the second part is uploading: the first part is there under its final name,
    no manifest. When it is back, the re-run delivers every part once, and the history counts each
    person once."""
    kit.rows(200_000, padding=60)
    configuration = {"split_threshold": 100_000}
    project = kit.project(META, configuration, routing=sftp)

    import directmail.pipeline as pipeline

    real_open = pipeline.open_destination

    def dying_server(*args, **kwargs):
        destination = real_open(*args, **kwargs)
        real_put = destination.put

        def put(path, name, before_commit=None):
            if name == "out_002.csv":
                destination.on_bytes = lambda sent, size: sent > size // 2 and sshd.stop()
            real_put(path, name, before_commit)

        destination.put = put
        return destination

    pipeline.open_destination = dying_server
    try:
        with pytest.raises(DeliveryError, match=r"upload of out_002\.csv"):
            kit.run(project)
    finally:
        pipeline.open_destination = real_open
    held = server_state(sshd)
    assert sorted(n for n in held if not n.endswith(".partial")) == ["out_001.csv", "out_001.csv.sha256"]
    assert kit.sql("select status, delivery_started_at is not null from direct_mail.runs") == [
        ("failed", True)
    ]

    sshd.start()
    record = kit.run(project)
    assert (record.status, record.attempt) == ("delivered", 2)
    held = server_state(sshd)
    assert sorted(n for n in held if not n.endswith(".partial")) == [
        "out.manifest.json",
        *(f"out_00{i}.csv{ext}" for i in (1, 2) for ext in ("", ".sha256")),
    ]
    manifest = json.loads(held["out.manifest.json"])
    assert [(f["name"], f["rows"], f["bytes"]) for f in manifest["files"]] == [
        (name, 100_000, len(held[name])) for name in ("out_001.csv", "out_002.csv")
    ]
    assert history(kit)["sends"] == [(200_000, 200_000)]
    assert history(kit)["pending"] == [(0,)]


def test_fault_runner_is_a_real_process(kit):
    """The child really runs the pipeline: without a fault it delivers and records like any run."""
    kit.rows(10)
    kit.project(META, SPLIT)
    child = run_with_fault(kit, "none")
    assert child.returncode == 0, child.stderr
    assert sorted(kit.landing()) == ["out.csv", "out.csv.sha256", "out.manifest.json"]
    assert history(kit)["runs"] == [("delivered", 1, 10)]
    assert os.environ.get("DIRECTMAIL_WAREHOUSE") is None


def test_killed_just_after_the_manifest_then_only_the_manifest_taken_is_settled_not_sent_again(kit):
    """I4 at its narrowest: the manifest was renamed into place (announced) but the journal's 'landed'
    line never written; the mail house, as it may, takes the manifest and leaves the parts. The journal
    says the manifest was wholly sent, and its temporary name is gone: it was announced."""
    kit.rows(5000)
    child = run_with_fault(kit, "after:out.manifest.json")
    assert child.returncode == -signal.SIGKILL, child.stderr
    (kit.directory / "landing" / "out.manifest.json").unlink()
    parts = landing_state(kit)
    with pytest.raises(Settled):
        kit.run(kit.project(META, SPLIT))
    assert landing_state(kit) == parts  # nothing put again
    assert kit.sql("select status, attempt from direct_mail.runs") == [("delivered", 1)]


def test_killed_with_the_manifest_wholly_sent_but_not_renamed_is_delivered_again(kit, monkeypatch):
    """The other side of the same instant: the manifest's temporary name is still there, so it was never
    announced, and the run id run again delivers the drop (the same bytes) and announces it."""
    kit.rows(5000)
    child = run_with_fault(kit, "before:out.manifest.json")
    assert child.returncode == -signal.SIGKILL, child.stderr
    landing = kit.directory / "landing"
    (landing / ".out.manifest.json.partial").write_bytes(b"{")  # as a kill between the upload and the rename
    from directmail.journal import FILES_LANDED, Journal, journal_path

    [(attempt, started)] = kit.sql("select attempt, delivery_started_at from direct_mail.runs")
    target = kit.project(META, SPLIT).dbt.target_info()
    Journal(journal_path(target, kit.directory)).record(
        RUN_ID, attempt, "out.manifest.json", started, FILES_LANDED
    )
    record = kit.run(kit.project(META, SPLIT))
    assert (record.status, record.attempt) == ("delivered", 2)
    assert json.loads((landing / "out.manifest.json").read_text())["run_id"] == RUN_ID


def test_a_crashed_attempt_run_again_with_nothing_to_export_leaves_none_of_its_parts(kit):
    """The run id run again after a kill before its manifest finds no one to mail (on_empty: skip): it
    delivers nothing, and the parts its crashed attempt left (never announced) go too."""
    kit.rows(5000)
    meta = {**META, "append_timestamp": True}
    child = run_with_fault(kit, "before:out_20261123_060000.manifest.json", meta)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert len([name for name in kit.landing() if name.endswith(".csv")]) == 3
    kit.sql("delete from campaign")
    record = kit.run(kit.project(meta, SPLIT))
    assert (record.status, record.attempt) == ("empty", 2)
    assert kit.landing() == {}
