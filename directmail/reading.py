"""Reading the history from a flow: wait while a run holds the warehouse, then read it read-only.

The CLI's side commands refuse at once when a run holds the warehouse (an operator can try again); a flow
publishing what a run changed, or answering an operator's question from the UI, waits for it instead.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from typing import TypeVar

from directmail.builder import DbtProject
from directmail.locking import lock_path
from directmail.warehouse import Warehouse, open_warehouse, warehouse_file

T = TypeVar("T")


def read_warehouse(dbt: DbtProject, read: Callable[[Warehouse], T]) -> T:
    """`read(warehouse)` on the warehouse opened read-only, under the run lock held shared."""
    target = dbt.target_info()
    database = warehouse_file(target, dbt.project_dir)
    if database is None or not database.exists():  # nothing recorded: read an empty warehouse
        return _read(dbt, read)
    with lock_path(target, dbt.project_dir).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            return _read(dbt, read)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(dbt: DbtProject, read: Callable[[Warehouse], T]) -> T:
    warehouse = open_warehouse(dbt.target_info(), dbt.project_dir, read_only=True)
    try:
        return read(warehouse)
    finally:
        warehouse.close()
