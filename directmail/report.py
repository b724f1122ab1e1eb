"""The run report: Markdown (Prefect artifact, files), rich tables (a wide terminal) and plain lines
(piped or narrow output, where a table would cut run ids, file names and hashes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table

from directmail.history import RunRecord
from directmail.reasons import REASONS


def _excluded_items(record: RunRecord) -> list[tuple[str, int]]:
    order = {reason: i for i, reason in enumerate(REASONS)}  # the order in which they apply
    return sorted(record.excluded.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def _audience_rows(record: RunRecord) -> list[tuple[str, int]]:
    """(label, count): targeted, each reason followed by its details (lists, address codes), exported."""
    rows = [("targeted", record.targeted)]
    for reason, count in _excluded_items(record):
        rows.append((f"excluded: {reason}", count))
        details = record.exclusion_details.get(reason, {})
        rows += [(f"  {detail}", n) for detail, n in sorted(details.items(), key=lambda i: (-i[1], i[0]))]
    rows.append(("exported", record.exported))
    if record.seed_rows:
        rows.append(("seed rows", record.seed_rows))
    return rows


def _markdown_label(label: str) -> str:
    if label.startswith("  "):  # a detail line, under its reason
        return "&nbsp;&nbsp;" + label.strip()
    return label[:1].upper() + label[1:]


def to_markdown(record: RunRecord) -> str:
    lines = [
        f"# Direct mail run `{record.run_id}`",
        "",
        f"**Status:** {record.status}  ",
        f"**Campaign:** {record.campaign} · **Configuration:** {record.configuration} · "
        f"**Destination:** {record.destination}  ",
        f"**Run time:** {record.run_time:%Y-%m-%dT%H:%M:%SZ} · **Attempt:** {record.attempt}",
        "",
        "| Audience | Profiles |",
        "|---|---:|",
        *(f"| {_markdown_label(label)} | {count:,} |" for label, count in _audience_rows(record)),
        "",
    ]
    if record.files:
        lines += ["| File | Rows | Bytes | SHA-256 |", "|---|---:|---:|---|"]
        lines += [
            f"| `{f['name']}` | {f['rows']:,} | {f['bytes']:,} | `{f['sha256']}` |" for f in record.files
        ]
        lines.append("")
    if record.step_seconds:
        lines += ["| Step | Seconds |", "|---|---:|"]
        lines += [f"| {step} | {seconds:.2f} |" for step, seconds in record.step_seconds.items()]
        lines.append("")
    if record.message:
        lines += ["**Message:**", "", "```", record.message, "```"]
    return "\n".join(lines)


def to_lines(record: RunRecord) -> list[str]:
    """`key: value` lines, nothing cut: values are copied from here into commands and tickets."""
    lines = [
        f"run: {record.run_id}",
        f"status: {record.status}",
        f"campaign: {record.campaign}",
        f"configuration: {record.configuration}",
        f"destination: {record.destination}",
        f"run time: {record.run_time:%Y-%m-%dT%H:%M:%SZ}",
        f"attempt: {record.attempt}",
        *(f"{label}: {count:,}" for label, count in _audience_rows(record)),
    ]
    if record.step_seconds:
        lines.append("duration: " + ", ".join(f"{k} {v:.1f}s" for k, v in record.step_seconds.items()))
    for f in record.files:
        lines += [f"file: {f['name']}", f"  rows: {f['rows']:,}", f"  bytes: {f['bytes']:,}"]
        lines.append(f"  sha256: {f['sha256']}")
    if record.message:
        lines += [f"message: {line}" for line in record.message.splitlines()]
    return lines


def earlier_run_line(record: RunRecord) -> str:
    """One line per earlier run, the run id first and whole."""
    finished = f", finished {record.finished_at:%Y-%m-%d %H:%M:%S}" if record.finished_at else ""
    return (
        f"{record.run_id}: {record.status}, targeted {record.targeted:,}, exported {record.exported:,}"
        f"{finished}"
    )


def to_rich(record: RunRecord) -> Group:
    """Tables for a terminal; a value too long for it is folded onto the next line, never cut."""
    summary = Table(title=f"{record.run_id} — {record.status}", show_header=False, title_justify="left")
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column(justify="right", overflow="fold")
    for label, count in _audience_rows(record):
        summary.add_row(label, f"{count:,}")
    summary.add_row("destination", record.destination)
    if record.step_seconds:
        summary.add_row("duration", " · ".join(f"{k} {v:.1f}s" for k, v in record.step_seconds.items()))
    parts: list[RenderableType] = [summary]
    if record.files:
        files = Table(title_justify="left")
        files.add_column("file", overflow="fold")
        files.add_column("rows", justify="right")
        files.add_column("bytes", justify="right")
        files.add_column("sha256", overflow="fold")
        for f in record.files:
            files.add_row(f["name"], f"{f['rows']:,}", f"{f['bytes']:,}", f["sha256"])
        parts.append(files)
    if record.message:
        parts.append(f"[red]{record.message}[/red]")
    return Group(*parts)


def utc_iso(moment: datetime | None) -> str | None:
    """A naive UTC timestamp of the history as ISO 8601 with `Z` (fractions only when there are some)."""
    if moment is None:
        return None
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{moment.microsecond:06d}" if moment.microsecond else "") + "Z"


def to_json(record: RunRecord) -> dict[str, Any]:
    """One run as `directmail report --json` prints it (keys documented in docs/cli.md): the columns of
    `direct_mail.runs`, timestamps as ISO 8601 UTC, the JSON columns as objects."""
    return {
        "run_id": record.run_id,
        "campaign": record.campaign,
        "status": record.status,
        "run_time": utc_iso(record.run_time),
        "started_at": utc_iso(record.started_at),
        "finished_at": utc_iso(record.finished_at),
        "delivery_started_at": utc_iso(record.delivery_started_at),
        "configuration": record.configuration,
        "destination": record.destination,
        "attempt": record.attempt,
        "committed_attempt": record.committed_attempt,
        "targeted": record.targeted,
        "excluded": dict(_excluded_items(record)),
        "exclusion_details": record.exclusion_details,
        "holdout": record.holdout,
        "duplicates_removed": record.duplicates_removed,
        "exported": record.exported,
        "seed_rows": record.seed_rows,
        "files": [dict(f) for f in record.files],
        "step_seconds": record.step_seconds,
        "message": record.message or None,
    }
