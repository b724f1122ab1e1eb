"""Why one profile was or was not mailed in a committed run of a campaign: one line an operator can paste
into a ticket, read from `sends` and `exclusions` in the warehouse."""

from __future__ import annotations

from dataclasses import dataclass

from directmail.committed import committed_run, latest_committed
from directmail.history import EXCLUSIONS, SENDS
from directmail.warehouse import Warehouse

MAILED = "mailed"
HOLDOUT = "holdout"
EXCLUDED = "excluded"
NOT_IN_AUDIENCE = "not_in_audience"


@dataclass(frozen=True)
class Explanation:
    campaign: str
    run_id: str
    profile_id: str
    outcome: str  # mailed | holdout | excluded | not_in_audience
    file_name: str | None = None  # mailed: the part it is in
    reason: str | None = None  # excluded: the exclusion reason
    detail: str | None = None  # excluded: the list, address codes, representative, cap or run

    @property
    def line(self) -> str:
        who = f"{self.profile_id} in {self.run_id}"
        if self.outcome == MAILED:
            return f"{who}: mailed, in {self.file_name}"
        if self.outcome == HOLDOUT:
            return f"{who}: held out (in the audience, not mailed: the campaign's holdout)"
        if self.outcome == EXCLUDED:
            return f"{who}: excluded as {self.reason}" + (f" ({self.detail})" if self.detail else "")
        return f"{who}: not in the audience (no row of {self.campaign} for this profile in that run)"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "campaign": self.campaign,
            "run_id": self.run_id,
            "profile_id": self.profile_id,
            "outcome": self.outcome,
            "file_name": self.file_name,
            "reason": self.reason,
            "detail": self.detail,
            "line": self.line,
        }


def explain(warehouse: Warehouse, campaign: str, identity: str, run_id: str | None = None) -> Explanation:
    """The profile's outcome in `run_id` (default: the campaign's latest committed run)."""
    run = committed_run(warehouse, campaign, run_id) if run_id else latest_committed(warehouse, campaign)
    rows = warehouse.query(
        f"""select
    case when is_holdout then '{HOLDOUT}' else '{MAILED}' end as outcome,
    file_name,
    cast(null as {warehouse.dialect.text_type}) as reason,
    cast(null as {warehouse.dialect.text_type}) as detail
from {SENDS}
where run_id = ? and profile_id = ?
union all
select
    '{EXCLUDED}' as outcome,
    cast(null as {warehouse.dialect.text_type}) as file_name,
    reason,
    detail
from {EXCLUSIONS}
where run_id = ? and profile_id = ? and reason <> '{HOLDOUT}'""",
        [run.run_id, identity, run.run_id, identity],
    ).to_pylist()
    if not rows:
        return Explanation(campaign, run.run_id, identity, NOT_IN_AUDIENCE)
    rank = {MAILED: 0, HOLDOUT: 1, EXCLUDED: 2}
    best = min(rows, key=lambda row: (rank[row["outcome"]], row["reason"] or ""))
    return Explanation(campaign, run.run_id, identity, **best)
