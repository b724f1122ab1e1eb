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
