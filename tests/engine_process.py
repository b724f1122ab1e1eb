"""Helpers run as processes of their own by tests/test_engines.py, so that each engine (Spark's JVM and
its single-process Derby metastore above all) lives only as long as one command, as in production.

    python -m tests.engine_process rows PROJECT TARGET SQL          # the rows as JSON lines
    python -m tests.engine_process killed-at-commit ARGS…           # `directmail ARGS…`, SIGKILLed
                                                                     # once the drop landed, before the
                                                                     # history records it delivered
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def rows(project: Path, target: str, sql: str) -> None:
    from directmail.builder import DbtProject
    from directmail.warehouse import open_warehouse

    warehouse = open_warehouse(DbtProject(project, target).target_info(), project, read_only=True)
    try:
        for row in warehouse.rows(sql):
            print(json.dumps(row, default=str, sort_keys=True))
    finally:
        warehouse.close()


def killed_at_commit(args: list[str]) -> None:
    """The worst moment for exactly-once: every file and the manifest are at the destination, and the
    history still says `delivering`."""
    from directmail import history
    from directmail.cli import app

    def die(*_: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    history.History.commit_delivered = die  # type: ignore[method-assign]
    app(args)


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "rows":
        rows(Path(rest[0]), rest[1], rest[2])
    elif command == "killed-at-commit":
        killed_at_commit(rest)
    else:
        raise SystemExit(f"unknown command {command!r}")
