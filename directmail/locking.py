"""One run at a time per warehouse: DuckDB allows a single writer process, and dbt builds write.

An exclusive `flock` on a file beside the DuckDB database. A second run (another process, or another
thread of a Prefect `serve` process) waits for the first instead of failing on DuckDB's own lock. The
lock is released by the kernel if the holder dies, so a crashed run never blocks the next one.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from directmail.builder import TargetInfo


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
