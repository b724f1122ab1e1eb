"""The landing journal (I4) speaks only for the attempt that wrote it."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path

from directmail.journal import FILES_LANDED, LANDED, Journal

STARTED = datetime(2026, 11, 23, 6, 0, 1, 250_000)


def test_an_attempt_is_landed_once_its_line_is_fsynced_and_files_landed_before_its_manifest(tmp_path):
    journal = Journal(tmp_path / "w.duckdb.directmail-journal")
    assert journal.state("c@1", 1, STARTED) is None
    journal.record("c@1", 1, "c.manifest.json", STARTED, FILES_LANDED)
    assert journal.state("c@1", 1, STARTED) == FILES_LANDED
    journal.record("c@1", 1, "c.manifest.json", STARTED)
    assert journal.state("c@1", 1, STARTED) == LANDED
    assert journal.state("c@1", 2, STARTED) is None
    lines = [json.loads(line) for line in journal.path.read_text().splitlines()]
    assert [(line["event"], line["started"]) for line in lines] == [
        ("files_landed", "2026-11-23T06:00:01"),
        ("landed", "2026-11-23T06:00:01"),
    ]


def test_a_line_of_a_warehouse_made_again_does_not_speak_for_its_new_attempts(tmp_path):
    """`make sample` starts run ids and attempts over; the old journal's line for the same run id and
    attempt has another delivery start and is not read as this attempt's landing."""
    journal = Journal(tmp_path / "w.duckdb.directmail-journal")
    journal.record("c@1", 1, "c.manifest.json", STARTED)
    assert journal.state("c@1", 1, datetime(2026, 12, 4, 19, 0, 0)) is None
    assert journal.state("c@1", 1, STARTED.replace(microsecond=0)) == LANDED  # engines keep the second


def test_a_line_torn_by_a_crash_is_no_record(tmp_path):
    journal = Journal(tmp_path / "j")
    journal.record("c@1", 1, "m", STARTED)
    with journal.path.open("a") as handle:
        handle.write('{"run_id": "c@2", "attempt": 1, "mani')
    assert journal.state("c@2", 1, STARTED) is None
    assert journal.state("c@1", 1, STARTED) == LANDED


def test_a_discarded_attempt_reads_not_landed_until_it_landed():
    """A run settling another run id's never-completed drop says so before removing its stray parts: a
    crash midway must not read as a drop the mail house took (files landed, now gone)."""
    from directmail.journal import NOT_LANDED

    journal = Journal(Path(tempfile.mkdtemp()) / "j")
    journal.record("c@1", 1, "c.manifest.json", STARTED, FILES_LANDED)
    journal.record("c@1", 1, "", STARTED, NOT_LANDED)
    assert journal.state("c@1", 1, STARTED) == NOT_LANDED
