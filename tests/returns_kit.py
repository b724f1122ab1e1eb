"""What the return-file tests share: a small DuckDB project the CLI runs on (the sample's dbt files, no
sample data), the profiles a test says were mailed, and return files of any size."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import pytest

from directmail.history import History
from directmail.warehouse.duckdb_warehouse import DuckDBWarehouse
from tests.conftest import copy_project_files

SENT_AT = "2026-11-01 06:00:00"


def returns_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample's dbt project files with an empty history: `directmail returns …` needs no models."""
    monkeypatch.delenv("DIRECTMAIL_WAREHOUSE", raising=False)
    project = copy_project_files(tmp_path / "project")
    ensure_history(warehouse_of(project))
    return project


def warehouse_of(project: Path) -> Path:
    return project / "warehouse" / "directmail.duckdb"


def ensure_history(database: Path) -> None:
    with DuckDBWarehouse(database) as warehouse:
        History(warehouse).ensure_tables()


def record_mailed(database: Path, identities: Iterable[str], held_out: Iterable[str] = ()) -> None:
    """A delivered run that mailed `identities` (and held `held_out` out): they are in direct_mail.sends."""
    rows = [(identity, False) for identity in identities] + [(identity, True) for identity in held_out]
    ensure_history(database)
    with duckdb.connect(str(database)) as con:
        con.execute(
            "insert into direct_mail.runs (run_id, campaign, run_time, status, attempt, committed_attempt) "
            f"values ('mailed@{SENT_AT}', 'mailed', '{SENT_AT}', 'delivered', 1, 1)"
        )
        con.executemany(
            "insert into direct_mail.send_rows values (?, 'mailed', ?, 'mailed.csv', ?, ?, 1)",
            [(f"mailed@{SENT_AT}", identity, holdout, SENT_AT) for identity, holdout in rows],
        )


def write_returns(path: Path, identities: Iterable[str], tail: str = "moved,2026-11-02") -> Path:
    """A return file of one row per identity (`tail`: its reason and returned_at)."""
    path.write_text("identity,reason,returned_at\n" + "".join(f"{i},{tail}\n" for i in identities))
    return path


def sql(database: Path, statement: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(statement).fetchall()
