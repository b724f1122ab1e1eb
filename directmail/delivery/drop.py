"""A campaign's drop at its destination: whether a run's drop landed, and replacing an earlier one.

The manifest is the commit marker: a drop whose manifest (naming the run id) is at the destination is
complete. Without a manifest, every planned file present with its planned size is the marker.
A run that writes under the names of an earlier drop (no timestamp in the names) first removes the earlier
manifest, then the earlier files it will not write, so the folder never holds parts of two runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from directmail.delivery import Destination
from directmail.layout import FileLayout


def manifest_document(destination: Destination, layout: FileLayout) -> dict[str, Any] | None:
    """The manifest under this layout's name, parsed, or None (absent, or not a manifest)."""
    data = destination.read(layout.manifest_name)
    if data is None:
        return None
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def landed(
    destination: Destination,
    layout: FileLayout,
    run_id: str,
    planned: list[dict[str, Any]],
    with_manifest: bool,
) -> bool:
    """Did this run id's drop complete at the destination?"""
    if with_manifest:
        document = manifest_document(destination, layout)
        return document is not None and document.get("run_id") == run_id
    return bool(planned) and all(
        destination.size(relative_name(layout, f["name"])) == f["bytes"] for f in planned
    )


def relative_name(layout: FileLayout, file_name: str) -> str:
    """A manifest names files by base name: they sit beside it."""
    return str(layout.folder / PurePosixPath(file_name).name)


@dataclass(frozen=True)
class DropInTheWay:
    """A delivered drop of another run id holding names this run would write (invariant I1)."""

    run_id: str | None  # None: a manifest that names no run id
    names: tuple[str, ...]
    recorded: bool  # whether the history knows the run id


def drops_in_the_way(
    destination: Destination,
    layout: FileLayout,
    run_id: str,
    delivered: Iterable[tuple[str, Iterable[str]]],
    status_of: Callable[[str], str | None],
) -> list[DropInTheWay]:
    """Drops of other run ids still at the destination under this layout's names.

    `delivered`: the campaign's delivered runs (run id, relative names) in delivery order; the latest to
    write a name owns it, and a file there under it is that drop's. The manifest there belongs to the
    run id it names: in the way when that run is recorded delivered or unknown to this history (another
    project's, or one whose record was lost); a superseded or never-completed run's is stale."""
    owners: dict[str, str] = {}
    for delivered_run, names in delivered:
        for name in names:
            if layout.is_part_name(name):
                owners[name] = delivered_run
    found: dict[str | None, list[str]] = {}
    document = manifest_document(destination, layout)
    if document is not None and document.get("run_id") != run_id:
        named = document.get("run_id")
        marker_owner = named if isinstance(named, str) else None
        if marker_owner is None or status_of(marker_owner) in (None, "delivered"):
            found.setdefault(marker_owner, []).append(layout.manifest_name)
    for name, file_owner in sorted(owners.items()):
        if file_owner == run_id:
            continue
        # A part, or the sidecar a mail house left of a part it took: both are that drop's (I1).
        for held in (name, FileLayout.checksum_name(name)):
            if destination.size(held) is not None:
                found.setdefault(file_owner, []).append(held)
    return [
        DropInTheWay(owner, tuple(names), owner is not None and status_of(owner) is not None)
        for owner, names in found.items()
    ]


def remove_with_sidecars(
    destination: Destination, names: Iterable[str], progress: Callable[[str], None] = lambda message: None
) -> None:
    """Each named file there, and its checksum sidecar: a never-announced drop's strays (I5)."""
    for name in names:
        for stray in (name, FileLayout.checksum_name(name)):
            if destination.size(stray) is not None:
                progress(f"removing {stray}, left by a drop that never completed")
                destination.remove(stray)


def replace_earlier_drop(
    destination: Destination,
    layout: FileLayout,
    writing: Iterable[str],
    earlier: Iterable[str],
    progress: Callable[[str], None] = lambda message: None,
) -> list[str]:
    """Remove the earlier manifest under this layout's name, then every file of the earlier drop (named by
    that manifest, or by `earlier`: relative names from the history), with their checksum sidecars, also
    those this run writes again: a crash between this run's parts then leaves only its own parts, never a
    folder holding parts of two runs (I5). Only names of this layout's own parts are touched. Returns
    what was removed."""
    names = set(earlier) | {name for name in writing if destination.size(name) is not None}
    document = manifest_document(destination, layout)
    removed = []
    if document is not None or destination.size(layout.manifest_name) is not None:
        for entry in (document or {}).get("files", []):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                names.add(relative_name(layout, entry["name"]))
        destination.remove(layout.manifest_name)
        removed.append(layout.manifest_name)
    for name in sorted(names):
        if not layout.is_part_name(name):
            continue
        progress(f"removing {name}, left by an earlier drop")
        destination.remove(name)
        destination.remove(FileLayout.checksum_name(name))
        removed.append(name)
    return removed
