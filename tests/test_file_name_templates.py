"""Contract 1's file-name templates: placeholders expanded first, then contract 3's naming rules."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from directmail.campaign import parse_campaign_spec
from directmail.filenames import expand_file_name

TEMPLATE = "{campaign}/{run_date}/{configuration}_{run_time}.csv"


def test_parts_sidecars_and_manifest_use_the_expanded_name_with_timestamp_and_gzip(kit):
    kit.sql("create table campaign as select 'P' || i as profile_id, i as n from range(5) t(i)")
    project = kit.project(
        {"file_name": TEMPLATE, "append_timestamp": True, "sort_by": ["n"]},
        {"split_threshold": 2, "compression": "gzip"},
    )
    kit.run(project, run_time="2026-11-23T07:08:09+01:00")  # 06:08:09 UTC
    stem = "campaign/20261123/test_20261123_060809_20261123_060809"
    parts = [f"{stem}_{i:03d}.csv.gz" for i in (1, 2, 3)]
    files = kit.landing()
    assert sorted(files) == sorted([*parts, *(p + ".sha256" for p in parts), f"{stem}.manifest.json"])
    assert [gzip.decompress(files[p]) for p in parts] == [b"n\n0\n1\n", b"n\n2\n3\n", b"n\n4\n"]
    assert (
        files[parts[0] + ".sha256"].decode().endswith("  test_20261123_060809_20261123_060809_001.csv.gz\n")
    )
    manifest = json.loads(files[f"{stem}.manifest.json"])
    assert [f["name"] for f in manifest["files"]] == [p.rsplit("/", 1)[1] for p in parts]
    sends = kit.sql("select distinct file_name from direct_mail.sends order by 1")
    assert sends == [(p,) for p in parts]


def test_a_dated_name_keeps_the_earlier_drop_and_a_rerun_of_the_run_id_reuses_its_names(kit):
    kit.sql("create table campaign as select 'P' || i as profile_id, i as n from range(3) t(i)")
    project = kit.project({"file_name": "out/{campaign}_{run_date}.csv"})
    kit.run(project, run_time="2026-11-23T06:00:00Z")
    kit.run(project, run_time="2026-11-30T06:00:00Z")
    kit.run(project, run_time="2026-11-30T06:00:00Z", force=True)
    assert sorted(kit.landing()) == [
        "out/campaign_20261123.csv",
        "out/campaign_20261123.csv.sha256",
        "out/campaign_20261123.manifest.json",
        "out/campaign_20261130.csv",
        "out/campaign_20261130.csv.sha256",
        "out/campaign_20261130.manifest.json",
    ]


def test_expansion_uses_utc_and_leaves_plain_names_alone():
    moment = datetime(2026, 1, 1, 0, 30, 5, tzinfo=UTC)
    assert (
        expand_file_name("a/{run_time}_{run_date}.txt", "c", "k", moment) == "a/20260101_003005_20260101.txt"
    )
    assert expand_file_name("plain/name.csv", "c", "k", moment) == "plain/name.csv"


ALL = "{campaign}, {configuration}, {run_date}, {run_time}"


@pytest.mark.parametrize(
    ("file_name", "reason"),
    [
        ("out/{date}.csv", f"file_name placeholder '{{date}}' is unknown; use {ALL}"),
        ("out/{}.csv", f"file_name placeholder '{{}}' is unknown; use {ALL}"),
        ("out/{campaign.x}.csv", f"file_name placeholder '{{campaign.x}}' is unknown; use {ALL}"),
        (
            "out/{campaign.csv",
            f"file_name has an unbalanced brace; literal braces are not supported, placeholders are {ALL}",
        ),
        (
            "out/campaign}.csv",
            f"file_name has an unbalanced brace; literal braces are not supported, placeholders are {ALL}",
        ),
        ("out/{{x}}.csv", f"file_name: literal braces are not supported; placeholders are {ALL}"),
        (
            "out/{run_date:%Y}.csv",
            "file_name placeholder '{run_date}' takes no format spec or conversion; write {run_date}",
        ),
        (
            "out/{campaign!r}.csv",
            "file_name placeholder '{campaign}' takes no format spec or conversion; write {campaign}",
        ),
        (
            "out/{campaign:}.csv",
            f"file_name placeholders take no format spec or conversion; write them as {ALL}",
        ),
        ("../{campaign}.csv", "file_name must not contain '..', '.' or empty folders"),
    ],
)
def test_an_invalid_template_names_file_key_and_reason(file_name, reason):
    meta = {"configuration": "csv", "file_name": file_name}
    spec, findings = parse_campaign_spec("winter", meta, "models/campaigns/_c.yml")
    assert spec is None
    assert [str(f) for f in findings] == [
        f"error: models/campaigns/_c.yml: models.winter.config.meta.direct_mail.file_name: {reason}"
    ]


KEY = "error: models/campaigns/_c.yml: models.winter.config.meta.direct_mail.file_name"
REFUSED = (
    "no control, invisible format, line or paragraph separator character (Unicode categories Cc, Cf, Zl, Zp)"
)


def _findings(file_name: str, **meta) -> list[str]:
    spec, findings = parse_campaign_spec(
        "winter", {"configuration": "csv", "file_name": file_name, **meta}, "models/campaigns/_c.yml"
    )
    assert (spec is None) == bool(findings)
    return [str(f) for f in findings]


@pytest.mark.parametrize(
    ("file_name", "codes"),
    [
        ("out/a\u2028b.csv", "U+2028"),
        ("out/a\u2029b.csv", "U+2029"),
        ("out/zero\u200bwidth.csv", "U+200B"),
        ("out/\u202egnp.csv", "U+202E"),
        ("out/bom\ufeff.csv", "U+FEFF"),
        ("out/nul\x00.csv", "U+0000"),
        ("out/del\x7f.csv", "U+007F"),
        ("out/c1\x85{campaign}.csv", "U+0085"),
    ],
)
def test_a_control_format_or_separator_character_is_refused(file_name, codes):
    assert _findings(file_name) == [f"{KEY}: file_name holds {codes}: {REFUSED}"]


def test_a_file_name_is_measured_in_utf8_bytes_with_everything_a_run_adds():
    """The longest name a run writes is `.<stem>[_<timestamp>]_001<ext>.gz.gpg.sha256.partial`, the
    temporary name of a part's checksum: 31 bytes beyond the name (47 with the timestamp)."""
    assert _findings("out/" + "a" * 220 + ".csv") == []  # 1 + 220 + 4 + 4 + 3 + 4 + 7 + 8 = 251
    assert _findings("out/" + "a" * 224 + ".csv") == []  # exactly 255
    too_long = _findings("out/" + "a" * 225 + ".csv")
    assert too_long == [
        f"{KEY}: file_name would give a file name of 256 bytes in UTF-8 ('.aaaaaaaaaaaaaaaaaaaaaaa…"
        "sv.gz.gpg.sha256.partial': the longest a run writes, with the part number, the timestamp if "
        "append_timestamp, .gz, .gpg and .sha256 or .manifest.json, under its temporary name "
        ".<name>.partial); a file name holds at most 255"
    ]
    assert _findings("out/" + "a" * 208 + ".csv", append_timestamp=True) == []
    assert "272 bytes" in _findings("out/" + "a" * 225 + ".csv", append_timestamp=True)[0]
    assert "256 bytes" in _findings("out/" + "a" * 209 + ".csv", append_timestamp=True)[0]
    # bytes, not characters: é is two bytes in UTF-8
    assert _findings("out/" + "é" * 112 + ".csv") == []
    assert "256 bytes" in _findings("out/" + "é" * 112 + "a.csv")[0]


def test_placeholders_count_at_their_expansion():
    # {campaign} is 'winter' (6), {configuration} 'csv' (3), {run_time} 15 bytes, {run_date} 8
    assert _findings("{campaign}" + "a" * 218 + ".csv") == []
    assert "256 bytes" in _findings("{campaign}" + "a" * 219 + ".csv")[0]
    assert _findings("{run_time}{run_date}{configuration}" + "a" * 198 + ".csv") == []
    assert "256 bytes" in _findings("{run_time}{run_date}{configuration}" + "a" * 199 + ".csv")[0]
    folder = "{run_time}" + "f" * 241  # 256 bytes once expanded: too long even with no file added
    assert _findings(folder + "/x.csv") == [
        f"{KEY}: file_name has a folder name of 256 bytes in UTF-8 once expanded "
        "('20000101_000000fffffffff…ffffffffffffffffffffffff'); a folder name holds at most 255"
    ]
    assert _findings("{run_time}" + "f" * 240 + "/x.csv") == []


def test_a_whole_name_over_1024_bytes_is_refused():
    folders = "/".join(["d" * 200] * 4)  # 803 bytes
    # 803 + '/' + '.' + 189 + '_001.csv.gz.gpg.sha256.partial' (30) = 1024
    assert _findings(folders + "/" + "n" * 189 + ".csv") == []
    (finding,) = _findings(folders + "/" + "n" * 190 + ".csv")
    assert finding.startswith(f"{KEY}: file_name would give a name of 1025 bytes in UTF-8 ('dddd")
    assert finding.endswith(
        "': the longest a run writes, under its temporary name); a whole name, folders included, holds "
        "at most 1024"
    )


def test_the_longest_accepted_name_is_written_and_delivered_whole(kit):
    """At the limit, every name a run writes (parts, checksums, manifest, temporaries) fits the file system."""
    kit.sql("create table campaign as select 'P' || i as profile_id, i as n from range(3) t(i)")
    stem = "é" * 100 + "s" * 8  # 208 bytes: with the timestamp, the checksum's temporary name is 255
    project = kit.project(
        {"file_name": f"out/{stem}.csv", "append_timestamp": True, "sort_by": ["n"]},
        {"split_threshold": 2, "compression": "gzip"},
    )
    kit.run(project)
    base = f"out/{stem}_20261123_060000"
    parts = [f"{base}_001.csv.gz", f"{base}_002.csv.gz"]
    assert sorted(kit.landing()) == sorted([*parts, *(p + ".sha256" for p in parts), f"{base}.manifest.json"])
    assert [gzip.decompress(kit.landing()[p]) for p in parts] == [b"n\n0\n1\n", b"n\n2\n"]
