"""A campaign's first lines exactly as the file would hold them, and why test profiles are not in it.

Read from an extracted run's staging table; nothing is written, delivered or recorded.
"""

from __future__ import annotations

from typing import Any

from directmail.extract import DETAIL, EXPORTED, IDENTITY, REASON, ExtractPlan, file_lines
from directmail.seedlist import SeedRows
from directmail.textformat import LineEncoder
from directmail.warehouse import Warehouse


def preview_lines(
    warehouse: Warehouse,
    plan: ExtractPlan,
    encoder: LineEncoder,
    notes: tuple[str | None, str | None],
    seeds: SeedRows | None,
    limit: int,
    batch_size: int = 65_536,
) -> list[bytes]:
    """The first file's first lines; the whole first file (seed rows, footer) when it is that short."""
    header_note, footer_note = notes
    lines = [encoder.note(header_note)] if header_note is not None else []
    lines.append(encoder.header(plan.labels))
    sql = plan.stream_sql(warehouse, encoder, limit)
    for batch in warehouse.stream(sql, batch_size):
        lines.append(encoder.lines(file_lines(batch)))
    if plan.exported <= limit:
        if seeds is not None and seeds.count:
            lines.append(encoder.lines(seeds.lines()))
        if footer_note is not None:
            lines.append(encoder.note(footer_note))
    return lines


def excluded_rows(warehouse: Warehouse, plan: ExtractPlan, limit: int) -> list[dict[str, Any]]:
    """Targeted rows that are not exported, with their reason and detail."""
    sql = (
        f"select {IDENTITY} as identity, {REASON} as reason, {DETAIL} as detail "
        f"from {plan.staging_table} where {REASON} <> '{EXPORTED}' "
        f"order by {IDENTITY} limit {int(limit)}"
    )
    return warehouse.query(sql).to_pylist()
