"""A full disk while staging: one line, the run recorded failed, nothing partial kept or delivered.

The disk is really full: the staging folder (or DuckDB's spill folder) is a 1 MiB tmpfs, which needs root
and a kernel that lets this process mount; the tests skip with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from directmail import cli
from directmail.errors import StagingFailed
from tests.runner_kit import RUN_TIME

RUN_ID = "campaign@2026-11-23T06:00:00Z"


@contextmanager
def small_disk(path: Path, size: str = "1m") -> Iterator[Path]:
    """`path` as a tmpfs of `size`, unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:  # lazily if a failed test left a file open in it: no mount outlives the test
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(path)], check=True)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_full_staging_disk_ends_the_run_with_one_line_recorded_failed(kit, monkeypatch, compression):
    kit.rows(30_000, padding=40)  # about 2.3 MB written, 1 MB of room (gzip: incompressible padding below)
    if compression == "gzip":
        kit.sql("update campaign set remark = md5(profile_id) || md5(name) || md5(street)")
    project = kit.project(
        {"file_name": "out/big.csv"}, {"split_threshold": 20_000, "compression": compression}
    )
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(cli, "_load", lambda ctx: project)
    staging = kit.directory / ".directmail" / "staging"
    with small_disk(staging):
        result = CliRunner().invoke(
            cli.app,
            ["--project-dir", str(kit.directory), "run", "campaign", "--run-time", RUN_TIME, "--skip-build"],
            catch_exceptions=False,
        )
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            f"error: {RUN_ID}: could not write the extract into the staging folder {staging}/"
            "campaign_2026-11-23T060000Z: No space left on device (ENOSPC); nothing delivered"
        ]
        assert "Traceback" not in result.output
        assert list(staging.iterdir()) == []  # no partial part kept
    assert not (kit.directory / "landing").exists()
    (status, message), *others = kit.sql("select status, message from direct_mail.runs")
    assert (status, others) == ("failed", [])
    assert message.endswith("No space left on device (ENOSPC); nothing delivered")
    assert kit.sql("select count(*) from direct_mail.sends") == [(0,)]

    # with room again, the same run id delivers the whole drop
    record = kit.run(project)
    assert record.status == "delivered"
    suffix = ".gz" if compression == "gzip" else ""
    assert f"out/big_002.csv{suffix}" in kit.landing()


def test_duckdb_out_of_space_while_staging_ends_the_run_with_one_line_recorded_failed(kit):
    """DuckDB spills the staging statement beside the database (<file>.tmp) past its memory limit; a full
    disk there is DuckDB's own error, reported in one line as well."""
    kit.rows(400_000, padding=60)
    project = kit.project({"file_name": "big.csv", "sort_by": ["remark desc"]})
    project.dbt.target_info().credentials.settings = {"memory_limit": "24MB", "threads": 1}
    with small_disk(kit.directory / "warehouse.duckdb.tmp"), pytest.raises(StagingFailed) as failed:
        kit.run(project)
    message = str(failed.value)
    assert message.startswith(f"{RUN_ID}: the warehouse ran out of disk space while staging the extract: ")
    assert message.endswith("; nothing delivered")
    assert "\n" not in message
    assert not (kit.directory / "landing").exists()
    assert not (kit.directory / ".directmail" / "staging").exists()
    assert kit.sql("select status from direct_mail.runs") == [("failed",)]
