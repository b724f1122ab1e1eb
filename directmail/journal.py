"""The landing journal (invariant I4): a local, fsynced record that a run's drop landed.

Once a drop's manifest (its commit marker) is at the destination, the mail house may take, move or delete
the files at any moment, so the destination cannot be asked later whether the drop landed. Before the
history commit the runner appends one line for the attempt to this journal, beside the warehouse, and
fsyncs it; settling an attempt reads the journal first and the destination second.

A crash can fall between the manifest's rename and that line. So a first line, `files_landed`, is written
once every data file is at the destination and the manifest is wholly sent under its temporary name,
just before the rename that announces it. Settling such an attempt finds either its manifest (landed);
or the manifest's temporary name still there (the rename never happened: deliver again); or, where the
destination renames (local, SFTP), neither: the rename happened and the mail house has taken the
manifest (landed); or, on an object store, which has no temporary name, data files without a manifest
(deliver again); or nothing at all: a mail house takes files only once the manifest is there, so the
drop had landed and was taken. `not_landed` says the runner knows the manifest is not there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from directmail.builder import TargetInfo

JOURNAL_SUFFIX = ".directmail-journal"
LANDED = "landed"  # the marker is at the destination: the drop is complete
FILES_LANDED = "files_landed"  # every data file is there; the manifest is being put
# The runner knows the manifest is not there: its put failed, or the drop was settled as never landed
# (its stray files then being removed). Its absence must not read as a drop the mail house took.
NOT_LANDED = "not_landed"


def journal_path(target: TargetInfo, project_dir: Path) -> Path:
    """Beside the DuckDB file (it travels with the warehouse); for other warehouses, one per target
    under the project's `.directmail/`."""
    if target.adapter_type == "duckdb" and target.duckdb_path not in ("", ":memory:"):
        path = Path(target.duckdb_path)
        path = path if path.is_absolute() else project_dir / path
        return path.with_name(path.name + JOURNAL_SUFFIX)
    digest = hashlib.sha1(f"{target.adapter_type}:{target.name}".encode()).hexdigest()[:12]
    return project_dir / ".directmail" / f"warehouse-{digest}{JOURNAL_SUFFIX}"


@dataclass(frozen=True)
class Landed:
    run_id: str
    attempt: int
    manifest: str  # the marker's relative name ('' without manifests: the last file put)
    landed_at: str
    event: str = LANDED
    started: str = ""  # the attempt's delivery_started_at, to the second: see `_started`


class Journal:
    def __init__(self, path: Path):
        self.path = path

    def record(
        self, run_id: str, attempt: int, manifest: str, started: datetime | None, event: str = LANDED
    ) -> None:
        """Append and fsync one line: this attempt's drop is complete at the destination (or, with
        FILES_LANDED, all but its manifest is)."""
        line = {
            "run_id": run_id,
            "attempt": attempt,
            "manifest": manifest,
            "landed_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "event": event,
            "started": _started(started),
        }
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if new:  # the file's own entry in its folder must survive a power loss too
            _fsync_folder(self.path.parent)

    def state(self, run_id: str, attempt: int, started: datetime | None) -> str | None:
        """How far the attempt's drop got by the journal: LANDED, NOT_LANDED, FILES_LANDED or None. Only
        lines of this very attempt count: a warehouse made again (`make sample`) starts its run ids and
        attempts over beside a journal that may still hold the old ones, with other delivery starts."""
        events = {
            e.event
            for e in self._entries()
            if e.run_id == run_id and e.attempt == attempt and e.started in ("", _started(started))
        }
        for event in (LANDED, NOT_LANDED, FILES_LANDED):  # landed first: nothing unlands a drop
            if event in events:
                return event
        return None

    def _entries(self) -> list[Landed]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines():
            try:  # a line torn by a crash mid-write is not a record (its fsync never returned)
                entries.append(Landed(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return entries


def _started(moment: datetime | None) -> str:
    """To the second: every engine keeps at least that of the delivery start it stores."""
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S")


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
