"""Settling a run id that an earlier attempt left `delivering` (or `failed` once its delivery started).

The attempt recorded its planned files and staged its history rows before the first byte left; whether
its drop completed is known only at the destination. The manifest naming the run id (or, without
manifests, every planned file at its planned size) means it did: its rows are committed and nothing
is sent again. Otherwise its rows are discarded and the run delivers again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from directmail.delivery import Destination
from directmail.delivery.drop import landed, relative_name, remove_with_sidecars
from directmail.history import DELIVERED, History, RunRecord
from directmail.journal import FILES_LANDED, LANDED, NOT_LANDED, Journal
from directmail.layout import FileLayout, temporary_name


def settle(
    history: History,
    previous: RunRecord,
    open_destination: Callable[[], Destination],
    layout: FileLayout,
    with_manifest: bool,
    attempt: int,
    journal: Journal,
    by: str | None = None,
) -> RunRecord | None:
    """The earlier attempt recorded delivered if its drop landed (returned), else its rows discarded.

    The journal is read first (I4): once it says the drop landed, the mail house may already have taken
    the files. `by`: the run id settling another run id's attempt (which, not landed, stops being
    settleable); None when the run id settles its own earlier attempt (it delivers again)."""
    state = journal.state(previous.run_id, previous.attempt, previous.delivery_started_at)
    if state != LANDED and not _at_destination(previous, open_destination, layout, with_manifest, state):
        if by is None:
            history.discard_pending(previous)
        else:  # no later run of that id replaces its parts: they go now, as no manifest will announce them
            journal.record(previous.run_id, previous.attempt, "", previous.delivery_started_at, NOT_LANDED)
            _remove_stray_files(open_destination, layout, previous)
            history.settle_never_landed(previous, by)
        return None
    settled = replace(
        previous,
        status=DELIVERED,
        finished_at=datetime.now(UTC).replace(tzinfo=None),
        message=f"settled by {by or f'attempt {attempt}'}: the drop had landed before the attempt that "
        "sent it could record it",
    )
    history.commit_delivered(settled)
    return settled


def _at_destination(
    previous: RunRecord,
    open_destination: Callable[[], Destination],
    layout: FileLayout,
    with_manifest: bool,
    state: str | None,
) -> bool:
    """Whether the destination shows the drop landed: its marker; or, once the journal says every data
    file had landed, none of them left there (taken by the mail house, which waits for the manifest)."""
    destination = open_destination()
    try:
        if landed(destination, layout, previous.run_id, previous.files, with_manifest):
            return True
        if state != FILES_LANDED:
            return False
        names = [relative_name(layout, f["name"]) for f in previous.files]
        if all(destination.size(name) is None for name in names):
            return True  # every file taken: the mail house takes a drop only once it is announced
        # The manifest was wholly sent: renamed (announced, then taken) unless its temporary is still there.
        staged = temporary_name(layout.manifest_name)
        return with_manifest and destination.stages_under_temporary_name and destination.size(staged) is None
    finally:
        destination.close()


def _remove_stray_files(
    open_destination: Callable[[], Destination], layout: FileLayout, previous: RunRecord
) -> None:
    """The parts (and sidecars) a never-completed drop left, so that a later drop under those names
    never stands beside them (I5). The journal says NOT_LANDED first: their absence then never reads as
    a drop the mail house took."""
    destination = open_destination()
    try:
        remove_with_sidecars(destination, [relative_name(layout, entry["name"]) for entry in previous.files])
    finally:
        destination.close()


def earlier_drop_files(
    history: History, previous: RunRecord | None, campaign: str, layout: FileLayout
) -> list[str]:
    """Files an earlier drop under these names may have left: this run id's earlier attempt, and the
    campaign's latest run that started delivering (the manifest at the destination is read too)."""
    records = [previous] if previous is not None else []
    latest = history.latest_delivery(campaign)
    records += [latest] if latest is not None else []
    return sorted({relative_name(layout, f["name"]) for r in records for f in r.files})
