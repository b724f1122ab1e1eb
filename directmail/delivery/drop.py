"""A campaign's drop at its destination: whether a run's drop landed, and replacing an earlier one.

The manifest is the commit marker: a drop whose manifest (naming the run id) is at the destination is
complete. Without a manifest, every planned file present with its planned size is the marker.
A run that writes under the names of an earlier drop (no timestamp in the names) first removes the earlier
manifest, then the earlier files it will not write, so the folder never holds parts of two runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
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


def replace_earlier_drop(
    destination: Destination,
    layout: FileLayout,
    writing: Iterable[str],
    earlier: Iterable[str],
    progress: Callable[[str], None] = lambda message: None,
) -> list[str]:
    """Remove the earlier manifest under this layout's name, then the earlier drop's files (named by that
    manifest, or by `earlier`: relative names from the history) that this run will not write, with their
    checksum sidecars. Only names of this layout's own parts are touched. Returns what was removed."""
    keep = set(writing)
    names = set(earlier)
    document = manifest_document(destination, layout)
    removed = []
    if document is not None or destination.size(layout.manifest_name) is not None:
        for entry in (document or {}).get("files", []):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                names.add(relative_name(layout, entry["name"]))
        destination.remove(layout.manifest_name)
        removed.append(layout.manifest_name)
    for name in sorted(names - keep):
        if not layout.is_part_name(name):
            continue
        progress(f"removing {name}, left by an earlier drop")
        destination.remove(name)
        destination.remove(FileLayout.checksum_name(name))
        removed.append(name)
    return removed
