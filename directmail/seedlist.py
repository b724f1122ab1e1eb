"""Seed (proof) addresses: rows of a dbt seed added to every file of a campaign.

The brand receives its own piece from every drop, so it can check what and when the mail house printed.
A seed row fills the file's columns by name: a seed column whose name is a column label (ignoring case)
fills that column; the address roles `address_line_1`, `address_line_2`, `postal_code`, `city`, `region`
and `country_code` fill the campaign's `address_columns`; any other file column stays empty. A
`seed_id` column, if any, orders the rows and is written as the identity when the campaign exports it.
Seed rows are recorded in the run (files' row counts, `seed_rows`), never as profiles in the sends.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from directmail.campaign import Campaign
from directmail.errors import Finding
from directmail.extract import IDENTITY, LINE, ROW, _is_text, file_lines
from directmail.textformat import LineEncoder
from directmail.valueformats import ISO, ValueFormats
from directmail.warehouse import Warehouse

SEED_ID = "seed_id"
MAX_SEED_ROWS = 1000


@dataclass
class SeedRows:
    """The seed rows as the file's text columns, validated like any extract batch."""

    batch: pa.RecordBatch  # ROW, IDENTITY, one text column per label, then the finished LINE

    @property
    def count(self) -> int:
        return self.batch.num_rows

    def lines(self) -> pa.Array:
        return file_lines(self.batch)

    def findings(self, campaign: Campaign, split_threshold: int) -> list[Finding]:
        """Every part holds all seed rows, so they must leave room for at least one profile."""
        limit = min(MAX_SEED_ROWS, split_threshold - 1)
        if self.count <= limit:
            return []
        reason = (
            f"seed list '{campaign.spec.seed_list}' has more than {limit} rows (at most {MAX_SEED_ROWS}, "
            "and fewer than the configuration's split_threshold, since every part holds them all)"
        )
        return [Finding(campaign.yaml_file, campaign.key("seed_list"), reason)]


def _role_columns(campaign: Campaign) -> dict[str, str]:
    """File label → seed column name for the address roles."""
    address = campaign.spec.address_columns
    if address is None:
        return {}
    roles = {label: f"address_line_{i + 1}" for i, label in enumerate(address.lines)}
    roles[address.postal_code] = "postal_code"
    roles[address.city] = "city"
    if address.region:
        roles[address.region] = "region"
    roles[address.country] = "country_code"
    return roles


def seed_columns_for(campaign: Campaign, labels: list[str], seed_columns: list[str]) -> dict[str, str]:
    """File label → the seed column that fills it (labels without one stay empty)."""
    by_name = {name.casefold(): name for name in seed_columns}
    roles = _role_columns(campaign)
    chosen = {}
    for label in labels:
        source = by_name.get(label.casefold()) or by_name.get(roles.get(label, "").casefold())
        if label == campaign.spec.identity and SEED_ID in by_name:
            source = by_name[SEED_ID]
        if source:
            chosen[label] = source
    return chosen


def read_seed_rows(
    warehouse: Warehouse,
    relation: str,
    campaign: Campaign,
    labels: list[str],
    encoder: LineEncoder,
    formats: ValueFormats = ISO,
) -> SeedRows:
    d = warehouse.dialect
    q = d.quote
    described = warehouse.describe(f"select * from {relation}")
    types = dict(described)
    chosen = seed_columns_for(campaign, labels, [name for name, _ in described])
    values = []
    for label in labels:
        source = chosen.get(label)
        values.append(d.as_text(q(source), types[source], formats) if source else "''")
    columns = [f"{value} as {q(label)}" for value, label in zip(values, labels, strict=True)]
    columns.append(f"{encoder.line_sql(d, values)} as {LINE}")
    seed_id = next((name for name, _ in described if name.casefold() == SEED_ID), None)
    identity = f"cast({q(seed_id)} as {d.text_type})" if seed_id else "''"
    ordered = [(seed_id, types[seed_id])] if seed_id else described  # by code point where text
    order = ", ".join(d.code_point_order(q(name)) if _is_text(kind) else q(name) for name, kind in ordered)
    sql = (
        f"select 0 as {ROW}, {identity} as {IDENTITY}, {', '.join(columns)} "
        f"from {relation} order by {order} limit {MAX_SEED_ROWS + 1}"
    )
    table = warehouse.query(sql).combine_chunks()
    batches = table.to_batches()
    batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
    return SeedRows(batch)
