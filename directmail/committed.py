"""A campaign's committed runs: the runs whose rows the `sends` and `exclusions` views show.

`diff` and `explain` read only these. A run still `delivering`, or one that failed before any attempt
committed, decided nothing the history can show; a `delivered` or `empty` run did (an empty run mailed no
one, and its exclusions say why). Runs are ordered by run time, the moment their audience was taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from directmail.errors import DirectMailError
from directmail.history import RUNS, History
from directmail.warehouse import Warehouse


@dataclass(frozen=True)
class CommittedRun:
    run_id: str
    campaign: str
    run_time: datetime
    status: str


def committed_runs(warehouse: Warehouse, campaign: str) -> list[CommittedRun]:
    """The campaign's committed runs, oldest run time first."""
    if not warehouse.relation_exists(RUNS):
        return []
    columns = {name for name, _ in warehouse.describe(f"select * from {RUNS}")}
    if "committed_attempt" not in columns:
        raise DirectMailError(
            "the history in this warehouse predates committed attempts: run any campaign once to upgrade it"
        )
    table = warehouse.query(
        f"select run_id, campaign, run_time, status from {RUNS} "
        "where campaign = ? and committed_attempt is not null "
        f"order by run_time, {warehouse.dialect.code_point_order('run_id')}",
        [campaign],
    )
    return [CommittedRun(**row) for row in table.to_pylist()]


def committed_run(warehouse: Warehouse, campaign: str, run_id: str) -> CommittedRun:
    """The named run, which must be this campaign's and committed; the error says which it is not."""
    record = History(warehouse).find(run_id) if warehouse.relation_exists(RUNS) else None
    if record is None:
        raise DirectMailError(
            f"no run '{run_id}' recorded (`directmail report {campaign}` lists the campaign's runs)"
        )
    if record.campaign != campaign:
        raise DirectMailError(f"run '{run_id}' is a run of campaign {record.campaign}, not of {campaign}")
    if record.committed_attempt is None:
        raise DirectMailError(
            f"run '{run_id}' is {record.status}: nothing of it was committed to sends and exclusions"
        )
    return CommittedRun(record.run_id, record.campaign, record.run_time, record.status)


def latest_committed(warehouse: Warehouse, campaign: str) -> CommittedRun:
    runs = committed_runs(warehouse, campaign)
    if not runs:
        raise DirectMailError(f"no committed run of campaign {campaign} (delivered or empty)")
    return runs[-1]
