"""The landing folder: a staged file is placed without a second copy, atomically, over any leftover."""

from __future__ import annotations

from pathlib import Path

import pytest

from directmail.config import LocalRouting
from directmail.delivery.local import LocalDestination
from directmail.errors import DeliveryError


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


def test_a_symlinked_folder_leading_outside_the_routing_folder_is_refused(tmp_path: Path):
    staged = tmp_path / "staging" / "drop.csv"
    staged.parent.mkdir()
    staged.write_bytes(b"a\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "old.csv").write_bytes(b"not ours")
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "outbound").symlink_to(outside)
    destination = LocalDestination(tmp_path, LocalRouting(type="local", directory="landing"))

    with pytest.raises(DeliveryError) as refused:
        destination.put(staged, "outbound/drop.csv")
    assert str(refused.value) == (
        f"could not deliver outbound/drop.csv in {landing}: {landing / 'outbound'} is a symbolic link to "
        f"{outside}, outside the routing's folder; nothing is written, read or removed through it"
    )
    with pytest.raises(DeliveryError, match=r"could not remove outbound/old\.csv in .* is a symbolic link"):
        destination.remove("outbound/old.csv")
    with pytest.raises(DeliveryError, match=r"could not read outbound/old\.csv"):
        destination.read("outbound/old.csv")
    with pytest.raises(DeliveryError, match="could not list outbound"):
        destination.list("outbound")
    assert sorted(p.name for p in outside.iterdir()) == ["old.csv"]  # nothing written or removed there
    assert (outside / "old.csv").read_bytes() == b"not ours"

    # deeper down, and through a link to a link
    (landing / "a").mkdir()
    (landing / "a" / "b").symlink_to(landing / "outbound")
    with pytest.raises(DeliveryError, match=r"a/b is a symbolic link to .*elsewhere, outside"):
        destination.put(staged, "a/b/c/drop.csv")
    assert sorted(p.name for p in outside.iterdir()) == ["old.csv"]


def test_a_symlink_inside_the_routing_folder_and_a_linked_routing_folder_are_followed(tmp_path: Path):
    staged = tmp_path / "staging" / "drop.csv"
    staged.parent.mkdir()
    staged.write_bytes(b"a\n")
    mounted = tmp_path / "mnt" / "share"
    (mounted / "real").mkdir(parents=True)
    (tmp_path / "landing").symlink_to(mounted)  # the routing's folder itself is a link (a mount)
    (mounted / "outbound").symlink_to(mounted / "real")  # a link that stays inside it
    destination = LocalDestination(tmp_path, LocalRouting(type="local", directory="landing"))

    destination.put(staged, "outbound/drop.csv")
    assert (mounted / "real" / "drop.csv").read_bytes() == b"a\n"
    assert destination.read("outbound/drop.csv") == b"a\n"
    assert destination.list("outbound") == ["outbound/drop.csv"]
    destination.remove("outbound/drop.csv")
    assert list((mounted / "real").iterdir()) == []


def test_a_run_through_a_symlink_leading_outside_fails_and_writes_nothing_there(kit):
    kit.sql("create table campaign as select 'P' || i as profile_id, i as n from range(3) t(i)")
    outside = kit.directory / "elsewhere"
    outside.mkdir()
    (kit.directory / "landing").mkdir()
    (kit.directory / "landing" / "out").symlink_to(outside)
    project = kit.project({"file_name": "out/drop.csv"})
    # refused before any work: the check for an earlier drop under these names reads through it first
    link = kit.directory / "landing" / "out"
    with pytest.raises(DeliveryError) as refused:
        kit.run(project)
    assert str(refused.value) == (
        f"could not read out/drop.manifest.json in {kit.directory / 'landing'}: {link} is a symbolic link "
        f"to {outside}, outside the routing's folder; nothing is written, read or removed through it"
    )
    assert list(outside.iterdir()) == []
    assert kit.sql("select status from direct_mail.runs") == [("failed",)]
