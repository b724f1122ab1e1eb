"""One run at a time per warehouse: DuckDB allows a single writer process, and dbt builds write.

An exclusive `flock` on a file beside the DuckDB database. A second run (another process, or another
thread of a Prefect `serve` process) waits for the first instead of failing on DuckDB's own lock. The
lock is released by the kernel if the holder dies, so a crashed run never blocks the next one.

A file lock guards one machine. On a PostgreSQL warehouse, which runners on several machines can reach,
`warehouse_lock` also holds a session advisory lock in that database (`pg_advisory_lock`), released by
the server when the holder's connection ends.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from directmail.builder import TargetInfo

NO_WAITING: Callable[[str], None] = lambda message: None  # noqa: E731


def lock_path(target: TargetInfo, project_dir: Path) -> Path:
    """Beside the DuckDB file; for other warehouses, one lock per target under the project."""
    if target.adapter_type == "duckdb" and target.duckdb_path not in ("", ":memory:"):
        path = Path(target.duckdb_path)
        path = path if path.is_absolute() else project_dir / path
        return path.with_name(path.name + ".directmail-lock")
    digest = hashlib.sha1(f"{target.adapter_type}:{target.name}".encode()).hexdigest()[:12]
    return project_dir / ".directmail" / f"warehouse-{digest}.lock"


@contextmanager
def exclusive(path: Path, waiting: Callable[[str], None] = lambda message: None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting("another run is using this warehouse; waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def warehouse_lock(
    target: TargetInfo, project_dir: Path, waiting: Callable[[str], None] = NO_WAITING
) -> Iterator[None]:
    """The writer's lock of the target's warehouse: the file lock, and on PostgreSQL the server's too."""
    with exclusive(lock_path(target, project_dir), waiting):
        if target.adapter_type != "postgres":
            yield
            return
        from directmail.warehouse.postgres_warehouse import advisory_lock

        with advisory_lock(target, waiting):
            yield
