"""Who was added or dropped between two committed runs of a campaign, and why.

"Mailed" means a piece in a file: a `sends` row that is not the holdout. A profile mailed in run B and not
in run A is *added*, with the reason it was not mailed in A; one mailed in A and not in B is *dropped*,
with its reason in B. A reason is an exclusion reason of `direct_mail.exclusions` (with its detail),
`holdout`, or `not_in_audience` (no row of the campaign model for it in that run). The comparison runs in
the warehouse: only the counts and the listed rows come back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from directmail.committed import CommittedRun, committed_run, committed_runs
from directmail.errors import DirectMailError
from directmail.extract import REASONS
from directmail.history import EXCLUSIONS, SENDS
from directmail.warehouse import SqlDialect, Warehouse

ADDED = "added"
DROPPED = "dropped"
NOT_IN_AUDIENCE = "not_in_audience"
HOLDOUT = "holdout"
REASON_ORDER = (NOT_IN_AUDIENCE, *REASONS)  # how counts and rows are ordered
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Change:
    profile_id: str
    reason: str  # why it was not mailed in the other run
    detail: str | None
    file_name: str | None  # the file it is in, in the run that mailed it


@dataclass
class Changes:
    """One direction: every count, and the first `limit` rows (by reason, then profile)."""

    count: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    rows: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class RunSide:
    run_id: str
    run_time: datetime
    status: str
    mailed: int
    holdout: int


@dataclass
class RunDiff:
    campaign: str
    run_a: RunSide
    run_b: RunSide
    added: Changes
    dropped: Changes
    unchanged: int  # mailed in both
    limit: int


def choose_runs(
    warehouse: Warehouse, campaign: str, run_a: str | None = None, run_b: str | None = None
) -> tuple[CommittedRun, CommittedRun]:
    """The runs to compare: B the latest committed run unless named, A the committed run before B
    unless named (one run id alone is A, compared with the latest)."""
    runs = committed_runs(warehouse, campaign) if run_a is None or run_b is None else []
    if (run_a is None or run_b is None) and len(runs) < 2:
        raise DirectMailError(
            f"campaign {campaign} has {len(runs)} committed run(s): a diff needs two (delivered or empty)"
        )
    b = committed_run(warehouse, campaign, run_b) if run_b else runs[-1]
    if run_a:
        a = committed_run(warehouse, campaign, run_a)
    else:
        earlier = [run for run in runs if (run.run_time, run.run_id) < (b.run_time, b.run_id)]
        if not earlier:
            raise DirectMailError(f"no committed run of {campaign} before {b.run_id} to compare it with")
        a = earlier[-1]
    if a.run_id == b.run_id:
        which = "is the latest committed run" if run_b is None else "is both runs"
        raise DirectMailError(f"nothing to compare: {a.run_id} {which}; name an earlier run to compare")
    return a, b


def since_previous(
    warehouse: Warehouse, campaign: str, run_id: str, limit: int = DEFAULT_LIMIT
) -> RunDiff | None:
    """What changed from the campaign's previous committed run to `run_id`; None for its first."""
    run = committed_run(warehouse, campaign, run_id)
    key = (run.run_time, run.run_id)
    earlier = [r for r in committed_runs(warehouse, campaign) if (r.run_time, r.run_id) < key]
    return diff_runs(warehouse, campaign, earlier[-1], run, limit) if earlier else None


def diff_runs(
    warehouse: Warehouse, campaign: str, a: CommittedRun, b: CommittedRun, limit: int = DEFAULT_LIMIT
) -> RunDiff:
    d = warehouse.dialect
    compared = _compared_sql(d, d.literal(a.run_id), d.literal(b.run_id))
    totals = warehouse.query(
        f"{compared}\nselect\n"
        "    count(*) filter (where mailed_a) as mailed_a,\n"
        "    count(*) filter (where mailed_b) as mailed_b,\n"
        f"    count(*) filter (where reason_a = '{HOLDOUT}') as holdout_a,\n"
        f"    count(*) filter (where reason_b = '{HOLDOUT}') as holdout_b,\n"
        "    count(*) filter (where mailed_a and mailed_b) as unchanged\n"
        "from compared"
    ).to_pylist()[0]
    counts = warehouse.query(
        f"{compared},\n{_CHANGES}\nselect change, reason, count(*) as profiles from changes group by 1, 2"
    ).to_pylist()
    order = f"{_reason_order_sql(d)}, {d.code_point_order('profile_id')}"
    rows = warehouse.query(
        f"{compared},\n{_CHANGES}\nselect change, profile_id, reason, detail, file_name\n"
        f"from (select *, row_number() over (partition by change order by {order}) as _dm_rank "
        f"from changes) as ranked\n"
        f"where _dm_rank <= {int(limit)}\n"
        f"order by change, {order}"
    ).to_pylist()
    sides = {ADDED: Changes(), DROPPED: Changes()}
    for row in sorted(counts, key=lambda r: _reason_rank(r["reason"])):
        side = sides[row["change"]]
        side.by_reason[row["reason"]] = row["profiles"]
        side.count += row["profiles"]
    for row in rows:
        sides[row.pop("change")].rows.append(Change(**row))
    return RunDiff(
        campaign,
        RunSide(a.run_id, a.run_time, a.status, totals["mailed_a"], totals["holdout_a"]),
        RunSide(b.run_id, b.run_time, b.status, totals["mailed_b"], totals["holdout_b"]),
        sides[ADDED],
        sides[DROPPED],
        totals["unchanged"],
        limit,
    )


def _reason_rank(reason: str) -> tuple[int, str]:
    return (REASON_ORDER.index(reason) if reason in REASON_ORDER else len(REASON_ORDER), reason)


def _reason_order_sql(dialect: SqlDialect) -> str:
    whens = " ".join(f"when '{reason}' then {i}" for i, reason in enumerate(REASON_ORDER))
    return f"case reason {whens} else {len(REASON_ORDER)} end, {dialect.code_point_order('reason')}"


def _compared_sql(dialect: SqlDialect, run_a: str, run_b: str) -> str:
    """One row per profile in either run: mailed or not in each, and why not (NULL: not in the audience).

    The holdout is taken from `sends` (is_holdout); an exclusions row of reason holdout says the same.
    """
    outcomes = []
    for side, run in (("a", run_a), ("b", run_b)):
        outcomes.append(f"""outcomes_{side} as (
    select profile_id, is_mailed, reason, detail, file_name
    from (
    select
        *,
        row_number() over (
            partition by profile_id order by is_mailed desc, {dialect.code_point_order("reason")}
        ) as _dm_rank
    from (
        select
            profile_id,
            not is_holdout as is_mailed,
            case when is_holdout then '{HOLDOUT}' end as reason,
            cast(null as {dialect.text_type}) as detail,
            file_name
        from {SENDS}
        where run_id = {run}
        union all
        select
            profile_id,
            false as is_mailed,
            reason,
            detail,
            cast(null as {dialect.text_type}) as file_name
        from {EXCLUSIONS}
        where run_id = {run}
            and reason <> '{HOLDOUT}'
    ) as run_outcomes
    ) as ranked
    where _dm_rank = 1
)""")
    return f"""with
{outcomes[0]},
{outcomes[1]},
compared as (
    select
        coalesce(outcomes_a.profile_id, outcomes_b.profile_id) as profile_id,
        coalesce(outcomes_a.is_mailed, false) as mailed_a,
        coalesce(outcomes_b.is_mailed, false) as mailed_b,
        coalesce(outcomes_a.reason, case when outcomes_a.profile_id is null then '{NOT_IN_AUDIENCE}' end)
            as reason_a,
        coalesce(outcomes_b.reason, case when outcomes_b.profile_id is null then '{NOT_IN_AUDIENCE}' end)
            as reason_b,
        outcomes_a.detail as detail_a,
        outcomes_b.detail as detail_b,
        outcomes_a.file_name as file_a,
        outcomes_b.file_name as file_b
    from outcomes_a
    full outer join outcomes_b on outcomes_a.profile_id = outcomes_b.profile_id
)"""


_CHANGES = f"""changes as (
    select '{ADDED}' as change, profile_id, reason_a as reason, detail_a as detail, file_b as file_name
    from compared
    where mailed_b and not mailed_a
    union all
    select '{DROPPED}' as change, profile_id, reason_b as reason, detail_b as detail, file_a as file_name
    from compared
    where mailed_a and not mailed_b
)"""


def why_not_mailed(reason: str, detail: str | None) -> str:
    """`not in the audience`, `held out`, or `excluded as <reason> (<detail>)`."""
    if reason == NOT_IN_AUDIENCE:
        return "not in the audience"
    if reason == HOLDOUT:
        return "held out"
    return f"excluded as {reason}" + (f" ({detail})" if detail else "")
