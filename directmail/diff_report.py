"""A run diff as Markdown (the flow's artifact), rich tables, plain lines (piped or narrow) and JSON.

The counts come first and are always complete; the rows after them are the first `limit` of each
direction, by reason then profile.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from directmail.diff import Change, Changes, RunDiff, RunSide, why_not_mailed
from directmail.report import utc_iso


def _run_line(label: str, side: RunSide) -> str:
    return f"{label}: {side.run_id} ({side.status}): mailed {side.mailed:,}, held out {side.holdout:,}"


def _why(change: Change, which: str) -> str:
    return f"{why_not_mailed(change.reason, change.detail)} in {which}"


def _shown(changes: Changes, limit: int) -> str:
    if changes.count > len(changes.rows):
        return f" (first {len(changes.rows):,} listed; --limit {limit})"
    return ""


def to_lines(diff: RunDiff) -> list[str]:
    """`key: value` lines, then one line per listed profile; nothing cut."""
    lines = [
        f"campaign: {diff.campaign}",
        _run_line("run a", diff.run_a),
        _run_line("run b", diff.run_b),
        f"added: {diff.added.count:,}",
        *(f"  {reason}: {count:,}" for reason, count in diff.added.by_reason.items()),
        f"dropped: {diff.dropped.count:,}",
        *(f"  {reason}: {count:,}" for reason, count in diff.dropped.by_reason.items()),
        f"mailed in both: {diff.unchanged:,}",
    ]
    for name, changes, which in (("added", diff.added, "a"), ("dropped", diff.dropped, "b")):
        if changes.rows:
            lines += ["", f"{name}{_shown(changes, diff.limit)}:"]
            lines += [f"{c.profile_id}: {_why(c, 'run ' + which)}" for c in changes.rows]
    return lines


def to_rich(diff: RunDiff) -> Group:
    summary = Table(title=f"{diff.campaign}: {diff.run_a.run_id} → {diff.run_b.run_id}", title_justify="left")
    summary.add_column("", style="bold", no_wrap=True)
    summary.add_column("profiles", justify="right", no_wrap=True)
    for side in (diff.run_a, diff.run_b):
        summary.add_row(f"mailed in {side.run_id}", f"{side.mailed:,}")
        summary.add_row(f"held out in {side.run_id}", f"{side.holdout:,}")
    summary.add_row("added", f"{diff.added.count:,}")
    for reason, count in diff.added.by_reason.items():
        summary.add_row(f"  {reason}", f"{count:,}")
    summary.add_row("dropped", f"{diff.dropped.count:,}")
    for reason, count in diff.dropped.by_reason.items():
        summary.add_row(f"  {reason}", f"{count:,}")
    summary.add_row("mailed in both", f"{diff.unchanged:,}")
    parts: list[Any] = [summary]
    for name, changes, which in (("added", diff.added, "a"), ("dropped", diff.dropped, "b")):
        if not changes.rows:
            continue
        table = Table(title=f"{name}{_shown(changes, diff.limit)}", title_justify="left")
        table.add_column("profile", no_wrap=True)
        table.add_column(f"why not mailed in run {which}", overflow="fold")
        table.add_column("file", overflow="fold")
        for change in changes.rows:
            table.add_row(
                change.profile_id, why_not_mailed(change.reason, change.detail), change.file_name or ""
            )
        parts.append(table)
    return Group(*parts)


def _markdown_run(side: RunSide) -> str:
    return f"`{side.run_id}` · mailed {side.mailed:,}, held out {side.holdout:,}"


def to_markdown(diff: RunDiff) -> str:
    lines = [
        f"# Changes since the previous run: `{diff.campaign}`",
        "",
        f"**Previous:** {_markdown_run(diff.run_a)}  ",
        f"**This run:** {_markdown_run(diff.run_b)}",
        "",
        "| Change | Reason | Profiles |",
        "|---|---|---:|",
        f"| Added | (total) | {diff.added.count:,} |",
        *(f"| Added | {reason} | {count:,} |" for reason, count in diff.added.by_reason.items()),
        f"| Dropped | (total) | {diff.dropped.count:,} |",
        *(f"| Dropped | {reason} | {count:,} |" for reason, count in diff.dropped.by_reason.items()),
        f"| Mailed in both | | {diff.unchanged:,} |",
        "",
    ]
    for name, changes, which in (("Added", diff.added, "previous"), ("Dropped", diff.dropped, "this")):
        if not changes.rows:
            continue
        listed = f" (first {len(changes.rows):,})" if changes.count > len(changes.rows) else ""
        lines += [f"## {name}{listed}", "", f"| Profile | Why not mailed in the {which} run | File |"]
        lines.append("|---|---|---|")
        lines += [
            f"| `{c.profile_id}` | {why_not_mailed(c.reason, c.detail)} | {c.file_name or ''} |"
            for c in changes.rows
        ]
        lines.append("")
    return "\n".join(lines)


def _side_json(side: RunSide) -> dict[str, Any]:
    return {
        "run_id": side.run_id,
        "run_time": utc_iso(side.run_time),
        "status": side.status,
        "mailed": side.mailed,
        "holdout": side.holdout,
    }


def _changes_json(changes: Changes) -> dict[str, Any]:
    return {
        "count": changes.count,
        "by_reason": changes.by_reason,
        "rows": [
            {"profile_id": c.profile_id, "reason": c.reason, "detail": c.detail, "file_name": c.file_name}
            for c in changes.rows
        ],
    }


def to_json(diff: RunDiff) -> dict[str, Any]:
    """The document `directmail diff --json` prints (keys documented in docs/cli.md)."""
    return {
        "campaign": diff.campaign,
        "run_a": _side_json(diff.run_a),
        "run_b": _side_json(diff.run_b),
        "added": _changes_json(diff.added),
        "dropped": _changes_json(diff.dropped),
        "unchanged": diff.unchanged,
        "limit": diff.limit,
    }
