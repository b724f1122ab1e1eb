"""Turn a built campaign table into the ordered, de-duplicated rows of the file, in the warehouse.

One staging table per run holds every targeted profile with the reason it is excluded (if any) and, for
the exported ones, its row number in the file. The warehouse does the heavy parts (consent join, holdout,
dedupe, ordering); Python only streams the result out as Arrow batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from directmail.campaign import Campaign, written_columns
from directmail.config import ConsentSource
from directmail.warehouse import Warehouse

STAGING_SCHEMA = "direct_mail"
ROW = "_dm_row"
IDENTITY = "_dm_identity"
REASON = "_dm_reason"
EXPORTED = "exported"
REASONS = ("no_postal_consent", "holdout", "duplicate")


@dataclass(frozen=True)
class ConsentRule:
    relation: str
    source: ConsentSource
    marketing_action: str


@dataclass
class ExtractPlan:
    """The SQL of one campaign run's extract, and the labels of the file's columns."""

    campaign: Campaign
    labels: list[str]
    staging_table: str

    def stream_sql(self, warehouse: Warehouse, limit: int | None = None) -> str:
        q = warehouse.dialect.quote
        columns = ", ".join(q(f"_dm_c{i}") + " as " + q(label) for i, label in enumerate(self.labels))
        sql = (
            f"select {ROW}, {IDENTITY}, {columns} from {self.staging_table} "
            f"where {REASON} = '{EXPORTED}' order by {ROW}"
        )
        return sql + (f" limit {int(limit)}" if limit is not None else "")


def plan_extract(
    warehouse: Warehouse,
    campaign: Campaign,
    column_types: list[tuple[str, str]],
    consent: ConsentRule | None,
    staging_name: str,
) -> tuple[ExtractPlan, str]:
    """The staging table's name and the statement that fills it."""
    d = warehouse.dialect
    q = d.quote
    spec = campaign.spec
    types = dict(column_types)
    labels = written_columns(campaign, [name for name, _ in column_types])
    identity = q(spec.identity)
    staging_table = f"{STAGING_SCHEMA}.{q(staging_name)}"

    formatted = [
        f"{d.as_text('campaign.' + q(label), types[label])} as _dm_c{i}" for i, label in enumerate(labels)
    ]
    sort_values = [f"campaign.{q(key.column)} as _dm_s{i}" for i, key in enumerate(spec.sort_keys)]
    order_by = [
        f"_dm_s{i} {'desc' if key.descending else 'asc'} nulls last" for i, key in enumerate(spec.sort_keys)
    ]
    order_by.append(f"{IDENTITY} asc")
    order = ", ".join(order_by)
    copy_key = ", ".join(f"_dm_c{i}" for i in range(len(labels)))

    if consent is not None:
        c = consent.source
        consent_cte = (
            f"refusals as (select distinct cast({q(c.identity)} as varchar) as refused_identity "
            f"from {consent.relation} where {q(c.marketing_action)} = {d.literal(consent.marketing_action)} "
            f"and lower(trim(coalesce(cast({q(c.value)} as varchar), ''))) = 'n'),"
        )
        consent_join = (
            f"left join refusals on refusals.refused_identity = cast(campaign.{identity} as varchar)"
        )
        refused = "refusals.refused_identity is not null"
    else:
        consent_cte, consent_join, refused = "", "", "false"

    holdout_key = f"{d.literal(campaign.name + ':')} || cast(campaign.{identity} as varchar)"
    threshold = round(spec.holdout_percent * 100)
    in_holdout = f"{d.holdout_bucket(holdout_key)} < {threshold}" if threshold else "false"

    sql = f"""
create or replace table {staging_table} as
with
{consent_cte}
flagged as (
    select
        cast(campaign.{identity} as varchar) as {IDENTITY},
        {", ".join([*formatted, *sort_values])},
        case when {refused} then 'no_postal_consent' when {in_holdout} then 'holdout' end as _dm_excluded
    from {campaign.relation} as campaign
    {consent_join}
),
copies as (
    select
        *,
        case when _dm_excluded is null
            then row_number() over (partition by _dm_excluded, {copy_key} order by {order})
        end as _dm_copy
    from flagged
),
reasoned as (
    select
        *,
        coalesce(_dm_excluded, case when _dm_copy > 1 then 'duplicate' else '{EXPORTED}' end) as {REASON}
    from copies
)
select
    *,
    case when {REASON} = '{EXPORTED}'
        then row_number() over (partition by {REASON} = '{EXPORTED}' order by {order})
    end as {ROW}
from reasoned
"""
    return ExtractPlan(campaign, labels, staging_table), sql


def reason_counts(warehouse: Warehouse, plan: ExtractPlan) -> dict[str, int]:
    table = warehouse.query(f"select {REASON} as reason, count(*) as n from {plan.staging_table} group by 1")
    counts = dict.fromkeys((*REASONS, EXPORTED), 0)
    counts.update(dict(zip(table["reason"].to_pylist(), table["n"].to_pylist(), strict=True)))
    return counts


def stream_rows(warehouse: Warehouse, plan: ExtractPlan, batch_size: int = 65_536) -> pa.RecordBatchReader:
    return warehouse.stream(plan.stream_sql(warehouse), batch_size)


def file_columns(batch: pa.RecordBatch) -> list[pa.Array]:
    """A streamed batch's written columns, in file order (without the row number and identity)."""
    return [batch.column(i) for i in range(2, batch.num_columns)]


def drop_staging(warehouse: Warehouse, plan: ExtractPlan) -> None:
    warehouse.execute(f"drop table if exists {plan.staging_table}")
