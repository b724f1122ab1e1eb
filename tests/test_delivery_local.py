"""The landing folder: a staged file is placed without a second copy, atomically, over any leftover."""

from __future__ import annotations

from pathlib import Path

from directmail.config import LocalRouting
from directmail.delivery.local import LocalDestination


def test_a_staged_file_lands_as_a_hard_link_and_a_killed_attempts_partial_is_replaced(tmp_path: Path):
    staged = tmp_path / "staging" / "drop.csv"
    staged.parent.mkdir()
    staged.write_bytes(b"a;b\r\n1;2\r\n")
    destination = LocalDestination(tmp_path, LocalRouting(type="local", directory="landing"))
    leftover = tmp_path / "landing" / "outbound" / ".drop.csv.partial"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a fi")  # what a killed attempt leaves

    destination.put(staged, "outbound/drop.csv")

    landed = tmp_path / "landing" / "outbound" / "drop.csv"
    assert landed.read_bytes() == b"a;b\r\n1;2\r\n"
    assert landed.samefile(staged)  # same file system: no second copy written
    assert sorted(p.name for p in landed.parent.iterdir()) == ["drop.csv"]
