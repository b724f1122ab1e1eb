"""`format: fixed_width` at byte level: padding, alignment, NULLs, notes, parts, and what validation refuses."""

from __future__ import annotations

import gzip
import hashlib
import json
import re

import pytest
import yaml

from directmail.campaign import Campaign, check_against_config, check_columns, parse_campaign_spec
from directmail.config import DirectMailConfig, load_config
from directmail.errors import ConfigError, ExtractInvalid
from directmail.fixedwidth import is_number
from directmail.pipeline import CampaignRun, RunOptions, parse_run_time
from tests.runner_kit import RUN_TIME

FIXED = {"format": "fixed_width"}
WIDTHS = {"name": 6, "street": 14, "amount": 8, "qty": 5, "score": 6, "since": 10, "seen_at": 26, "note": 8}
MIXED = {
    "file_name": "out/mixed.txt",
    "header_note": "Fixed width, é",
    "footer_note": "END",
    "sort_by": ["profile_id"],
    "column_widths": WIDTHS,
}
# Every encoding holds these rows (é, ß, ü, ï); numbers of every kind, a NULL and an empty string in each.
MIXED_ROWS = """
create table campaign as select * from (values
    ('P1', 'Zoé', 'Hauptstraße 5', 12.50::decimal(10,2), 7, 1.5::double, date '2026-01-31', timestamp '2026-11-23 06:00:00', 'Ünïcode'),
    ('P2', 'Ana', null, -3.25, 1234, -2.0, null, timestamp '2026-11-23 06:00:00.250', null),
    ('P3', '', 'x', null, null, null, date '2025-12-01', null, '')
) as t(profile_id, name, street, amount, qty, score, since, seen_at, note)
"""
# name(6) street(14) amount(8) qty(5) score(6) since(10) seen_at(26) note(8): numbers on the right.
MIXED_LINES = [
    "Fixed width, é",
    "Zoé   Hauptstraße 5    12.50    7   1.52026-01-312026-11-23T06:00:00       Ünïcode ",
    "Ana                    -3.25 1234  -2.0          2026-11-23T06:00:00.250000        ",
    "      x                                2025-12-01                                  ",
]
# Widths count characters, not bytes: 日本 takes two of its column's six.
UTF8_ROW = (
    "insert into campaign values "
    "('P4', '日本', 'Tōkyō 1-2', 0.10, 0, 100.0, date '2026-02-01', timestamp '2026-01-01 00:00:00', 'ß')"
)
UTF8_LINE = "日本    Tōkyō 1-2         0.10    0 100.02026-02-012026-01-01T00:00:00       ß       "


def run_fixed(kit, meta: dict, configuration: dict | None = None, **project):
    return kit.run(kit.project(meta, {**FIXED, **(configuration or {})}, **project))


@pytest.mark.parametrize("line_ending", ["lf", "crlf"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
def test_every_encoding_and_line_ending(kit, encoding, line_ending):
    kit.sql(MIXED_ROWS)
    lines = list(MIXED_LINES)
    if encoding.startswith("utf-8"):
        kit.sql(UTF8_ROW)
        lines.append(UTF8_LINE)
    run_fixed(kit, MIXED, {"encoding": encoding, "line_ending": line_ending})

    newline = "\r\n" if line_ending == "crlf" else "\n"
    text = "".join(line + newline for line in [*lines, "END"])
    bom = b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b""
    expected = bom + text.encode("utf-8" if encoding == "utf-8-sig" else encoding)
    assert kit.landing()["out/mixed.txt"] == expected
    for line in text.split(newline)[1:-2]:  # every data line is exactly as wide as its columns
        assert len(line) == sum(WIDTHS.values())


def test_the_bytes_sidecar_and_manifest_of_a_utf8_file(kit):
    kit.sql(MIXED_ROWS)
    kit.sql(UTF8_ROW)
    record = run_fixed(kit, MIXED)
    expected = (
        b"Fixed width, \xc3\xa9\n"
        b"Zo\xc3\xa9   Hauptstra\xc3\x9fe 5    12.50    7   1.52026-01-312026-11-23T06:00:00       "
        b"\xc3\x9cn\xc3\xafcode \n"
        b"Ana                    -3.25 1234  -2.0          2026-11-23T06:00:00.250000        \n"
        b"      x" + b" " * 32 + b"2025-12-01" + b" " * 34 + b"\n"
        b"\xe6\x97\xa5\xe6\x9c\xac    T\xc5\x8dky\xc5\x8d 1-2         0.10    0 100.02026-02-01"
        b"2026-01-01T00:00:00       \xc3\x9f       \n"
        b"END\n"
    )
    files = kit.landing()
    assert files["out/mixed.txt"] == expected
    digest = hashlib.sha256(expected).hexdigest()
    assert files["out/mixed.txt.sha256"] == f"{digest}  mixed.txt\n".encode()
    manifest = json.loads(files["out/mixed.manifest.json"])
    assert manifest["files"] == [{"name": "mixed.txt", "rows": 4, "bytes": len(expected), "sha256": digest}]
    assert record.exported == 4


PARTS = """
create table campaign as select * from (values
    ('P1', 'Ana', 3), ('P2', 'Bea', 10), ('P3', 'Ana', 3), ('P4', 'Cy', -1), ('P5', 'Dee', 200)
) as t(profile_id, name, n);
create table proofs as select 'S1' as seed_id, 'Proof' as name
"""


def test_parts_timestamp_gzip_seed_rows_and_duplicates(kit):
    kit.sql(PARTS)
    meta = {
        "file_name": "drop/out.txt",
        "append_timestamp": True,
        "header_note": "HDR",
        "footer_note": "FTR",
        "sort_by": ["name"],
        "seed_list": "proofs",
        "column_widths": {"name": 5, "n": 4},
    }
    configuration = {"split_threshold": 3, "compression": "gzip", "line_ending": "crlf"}
    record = run_fixed(kit, meta, configuration, seeds=["proofs"])

    files = kit.landing()
    first, second = "drop/out_20261123_060000_001.txt.gz", "drop/out_20261123_060000_002.txt.gz"
    assert sorted(files) == sorted(
        [first, first + ".sha256", second, second + ".sha256", "drop/out_20261123_060000.manifest.json"]
    )
    # P3 repeats P1 across the written columns: written once. The seed's missing column is all spaces.
    assert gzip.decompress(files[first]) == b"HDR\r\nAna     3\r\nBea    10\r\nProof    \r\nFTR\r\n"
    assert gzip.decompress(files[second]) == b"HDR\r\nCy     -1\r\nDee   200\r\nProof    \r\nFTR\r\n"
    for name in (first, second):
        digest = hashlib.sha256(files[name]).hexdigest()
        assert files[name + ".sha256"] == f"{digest}  {name.split('/')[-1]}\n".encode()
    manifest = json.loads(files["drop/out_20261123_060000.manifest.json"])
    assert manifest["total_rows"] == 6 and [f["rows"] for f in manifest["files"]] == [3, 3]
    assert (record.exported, record.duplicates_removed, record.seed_rows) == (4, 1, 2)


def test_encrypted_parts_decrypt_to_the_plain_fixed_width_bytes(kit, mailhouse_key, tmp_path, monkeypatch):
    monkeypatch.setenv("GNUPGHOME", str(tmp_path / "user-gnupg"))
    kit.sql(
        "create table campaign as select 'P' || i as profile_id, 'N' || i as name, i as n from range(3) t(i)"
    )
    meta = {"file_name": "x.txt", "sort_by": ["n"], "column_widths": {"name": 3, "n": 2}}
    routing = {"type": "local", "directory": "encrypted", "encryption_key": str(mailhouse_key.public_key)}
    run_fixed(kit, meta, {"split_threshold": 2}, routing=routing)
    root = kit.directory / "encrypted"
    assert sorted(p.name for p in root.glob("*.gpg")) == ["x_001.txt.gpg", "x_002.txt.gpg"]
    assert mailhouse_key.decrypt((root / "x_001.txt.gpg").read_bytes()) == b"N0  0\nN1  1\n"
    assert mailhouse_key.decrypt((root / "x_002.txt.gpg").read_bytes()) == b"N2  2\n"


def test_a_value_wider_than_its_column_stops_the_run_naming_row_and_column(kit):
    kit.sql(
        """create table campaign as select * from (values
            ('P1', 'Ana', 'Lisboa'), ('P2', 'Alexandra', 'Porto'), ('P3', 'Bea', '日本日本日本')
        ) as t(profile_id, name, city)"""
    )
    meta = {"file_name": "w.txt", "sort_by": ["profile_id"], "column_widths": {"name": 5, "city": 5}}
    with pytest.raises(ExtractInvalid) as raised:
        run_fixed(kit, meta)
    message = str(raised.value)
    assert message.splitlines() == [
        "3 value(s) failed validation; nothing was delivered:",
        "  row 2 (identity P2), column 'name': 9 characters, wider than its column width 5",
        "  row 1 (identity P1), column 'city': 6 characters, wider than its column width 5",
        "  row 3 (identity P3), column 'city': 6 characters, wider than its column width 5",
    ]
    assert not (kit.directory / "landing").exists()
    assert kit.sql("select status from direct_mail.runs") == [("failed",)]
    assert kit.sql("select count(*) from direct_mail.sends") == [(0,)]


def test_a_line_break_in_a_value_stops_the_run_naming_row_and_column(kit):
    kit.sql(
        """create table campaign as select * from (values
            ('P1', 'a' || chr(10) || 'b'), ('P2', 'fine'), ('P3', 'c' || chr(13) || 'd'),
            ('P4', 'twelve chars' || chr(13) || chr(10))
        ) as t(profile_id, name)"""
    )
    meta = {"file_name": "n.txt", "sort_by": ["profile_id"], "column_widths": {"name": 10}}
    with pytest.raises(ExtractInvalid) as raised:
        run_fixed(kit, meta)
    message = str(raised.value)
    reason = "holds a line break (CR or LF), which a fixed-width line cannot hold"
    assert f"row 1 (identity P1), column 'name': 'a\\nb' {reason}" in message
    assert f"row 3 (identity P3), column 'name': 'c\\rd' {reason}" in message
    assert (
        f"row 4 (identity P4), column 'name': 'twelve chars\\r\\n' {reason}; "
        "14 characters, wider than its column width 10"
    ) in message
    assert "P2" not in message and len(message.splitlines()) == 4  # one line per finding
    assert not (kit.directory / "landing").exists()


def test_escape_formulas_prefix_counts_toward_the_width_and_numbers_stay(kit):
    kit.sql(
        "create table campaign as select * from (values ('P1', '=SUM', -5), ('P2', 'ok', 12)) as t(profile_id, name, n)"
    )
    meta = {"file_name": "f.txt", "sort_by": ["profile_id"], "column_widths": {"name": 5, "n": 3}}
    run_fixed(kit, meta, {"escape_formulas": True})
    assert kit.landing()["f.txt"] == b"'=SUM -5\nok    12\n"

    kit.take_drop()
    narrow = {**meta, "column_widths": {"name": 4, "n": 3}}  # '=SUM fits, but not once escaped
    with pytest.raises(
        ExtractInvalid, match=r"row 1 \(identity P1\), column 'name': 5 characters, wider than"
    ):
        kit.run(kit.project(narrow, {**FIXED, "escape_formulas": True}), run_time="2026-11-24T06:00:00Z")


def test_the_smaller_of_max_lengths_and_the_width_is_the_limit_reported_once(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'Alexa' as name")
    tighter = {"file_name": "m.txt", "column_widths": {"name": 6}, "max_lengths": {"name": 3}}
    with pytest.raises(ExtractInvalid) as raised:
        run_fixed(kit, tighter)
    assert str(raised.value).splitlines() == [
        "1 value(s) failed validation; nothing was delivered:",
        "  row 1 (identity P1), column 'name': 5 characters, more than 3",
    ]
    looser = {"file_name": "m.txt", "column_widths": {"name": 4}, "max_lengths": {"name": 10}}
    with pytest.raises(ExtractInvalid) as raised:
        kit.run(kit.project(looser, FIXED), run_time="2026-11-24T06:00:00Z")
    assert str(raised.value).splitlines() == [
        "1 value(s) failed validation; nothing was delivered:",
        "  row 1 (identity P1), column 'name': 5 characters, wider than its column width 4",
    ]


def test_preview_shows_the_file_bytes(kit):
    kit.sql(MIXED_ROWS)
    project = kit.project(MIXED, {**FIXED, "encoding": "cp1252", "line_ending": "crlf"})
    options = RunOptions(parse_run_time(RUN_TIME), dry_run=True, skip_build=True)
    lines, _ = CampaignRun(project, "campaign", options).preview(limit=10)
    kit.run(project)
    assert b"".join(lines) == kit.landing()["out/mixed.txt"]
    assert b"".join(lines).startswith("Fixed width, é\r\nZoé   Hauptstraße".encode("cp1252"))


def test_an_exported_identity_needs_a_width_too(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'Ana' as name")
    meta = {"file_name": "i.txt", "export_identity": True, "column_widths": {"name": 4}}
    with pytest.raises(ConfigError) as raised:
        run_fixed(kit, meta)
    assert str(raised.value) == (
        "error: models/test.yml: models.campaign.config.meta.direct_mail.column_widths: "
        "no width for written column 'profile_id'"
    )
    assert not (kit.directory / "landing").exists()
    run_fixed(kit, {**meta, "column_widths": {"profile_id": 3, "name": 4}})
    assert kit.landing()["i.txt"] == b"P1 Ana \n"


# -- configuration errors ---------------------------------------------------------------------------------


def _campaign(configuration: str, **meta) -> Campaign:
    spec, findings = parse_campaign_spec(
        "winter", {"configuration": configuration, "file_name": "w.txt", **meta}, "models/c.yml"
    )
    assert not findings
    return Campaign("winter", spec, "model.p.winter", "main.winter", "models/c.yml")


CONFIG = DirectMailConfig.model_validate(
    {
        "routing": {"landing": {"type": "local", "directory": "landing"}},
        "configurations": {
            "fw": {"routing": "landing", "format": "fixed_width"},
            "csv": {"routing": "landing"},
        },
    }
)
KEY = "error: models/c.yml: models.winter.config.meta.direct_mail.column_widths"


def test_a_fixed_width_configuration_needs_column_widths():
    findings = check_against_config(_campaign("fw"), CONFIG)
    assert [str(f) for f in findings] == [
        f"{KEY}: required: configuration 'fw' has format fixed_width (a width per column)"
    ]
    assert check_against_config(_campaign("fw", column_widths={"a": 1}), CONFIG) == []


def test_column_widths_on_another_format_is_an_error():
    findings = check_against_config(_campaign("csv", column_widths={"a": 1}), CONFIG)
    assert [str(f) for f in findings] == [
        f"{KEY}: only for format fixed_width; configuration 'csv' has format csv"
    ]


def test_every_written_column_and_only_those_have_a_width():
    campaign = _campaign("fw", column_widths={"name": 10, "town": 5})
    findings = check_columns(campaign, ["profile_id", "name", "city", "zip"])
    assert [str(f) for f in findings] == [
        f"{KEY}: no width for written column 'city'",
        f"{KEY}: no width for written column 'zip'",
        f"{KEY}.town: column 'town' is not a written column",
    ]
    assert check_columns(_campaign("fw", column_widths={"name": 1}), ["profile_id", "name"]) == []


@pytest.mark.parametrize(
    ("widths", "reason"),
    [
        ({"name": 0}, "name: Input should be greater than or equal to 1"),
        ({"name": -3}, "name: Input should be greater than or equal to 1"),
        ({"name": 10_001}, "name: Input should be less than or equal to 10000"),
        ({"name": "20"}, "name: Input should be a valid integer"),
        ({"name": 2.5}, "name: Input should be a valid integer"),
        ({"name": True}, "name: Input should be a valid integer"),
        (["name"], "Input should be a valid dictionary"),
    ],
)
def test_widths_are_integers_of_at_least_one(widths, reason):
    spec, findings = parse_campaign_spec(
        "winter", {"configuration": "fw", "file_name": "w.txt", "column_widths": widths}, "models/c.yml"
    )
    assert spec is None
    separator = "." if reason.startswith("name") else ": "
    assert [str(f) for f in findings] == [f"{KEY}{separator}{reason}"]


def test_a_fixed_width_configuration_has_no_separator(tmp_path):
    document = {
        "routing": {"landing": {"type": "local", "directory": "landing"}},
        "configurations": {"fw": {"routing": "landing", "format": "fixed_width", "separator": ";"}},
    }
    (tmp_path / "direct_mail.yml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path)
    assert str(raised.value) == (
        "error: direct_mail.yml: configurations.fw: "
        "format fixed_width has no separator: columns are padded to their widths"
    )


def test_a_run_refuses_widths_that_do_not_match_the_model_before_any_work(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'Ana' as name, 'Lisboa' as city")
    with pytest.raises(ConfigError) as raised:
        run_fixed(kit, {"file_name": "c.txt", "column_widths": {"name": 4, "town": 5}})
    assert str(raised.value).splitlines() == [
        "error: models/test.yml: models.campaign.config.meta.direct_mail.column_widths: "
        "no width for written column 'city'",
        "error: models/test.yml: models.campaign.config.meta.direct_mail.column_widths.town: "
        "column 'town' is not a written column",
    ]
    with pytest.raises(ConfigError, match="column_widths: only for format fixed_width"):
        kit.run(kit.project({"file_name": "c.txt", "column_widths": {"name": 4, "city": 6}}))
    assert not (kit.directory / "landing").exists()


@pytest.mark.parametrize(
    ("type_name", "number"),
    [
        ("INTEGER", True),
        ("BIGINT", True),
        ("HUGEINT", True),
        ("DECIMAL(10,2)", True),
        ("numeric(12, 4)", True),
        ("DOUBLE", True),
        ("FLOAT", True),
        ("double precision", True),
        ("VARCHAR", False),
        ("DATE", False),
        ("TIMESTAMP", False),
        ("BOOLEAN", False),
    ],
)
def test_number_types_are_right_aligned(type_name, number):
    assert is_number(type_name) is number


def test_an_empty_drop_with_on_empty_deliver_holds_only_the_notes(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'Ana' as name where false")
    meta = {"file_name": "e.txt", "header_note": "HDR", "footer_note": "FTR", "column_widths": {"name": 4}}
    record = run_fixed(kit, meta, {"on_empty": "deliver", "encoding": "utf-8-sig"})
    assert kit.landing()["e.txt"] == b"\xef\xbb\xbfHDR\nFTR\n"
    assert record.exported == 0


# -- end to end: a fixed-width campaign added to a copy of the sample dbt project, through the CLI --------

E2E_MODEL = """\
select
    profile_id,
    first_name as "Prénom",
    normalized_postal_code as "CP",
    normalized_city as "Ville",
    normalized_country_code as "Pays",
    order_count as "Commandes",
    round(lifetime_value, 2) as "Montant"
from {{ ref('int_profiles_qualified') }}
where is_active_customer
"""
E2E_WIDTHS = {"Prénom": 30, "CP": 10, "Ville": 40, "Pays": 2, "Commandes": 5, "Montant": 12}
E2E_CONFIGURATION = """
  mailhouse_fixed:
    routing: landing
    format: fixed_width
    line_ending: crlf
"""


def _e2e_yaml(configuration: str, widths: dict | None) -> str:
    meta = {
        "configuration": configuration,
        "file_name": "outbound/fixed_flyer.txt",
        "header_note": "FIXED FLYER",
        "sort_by": ["CP"],
    }
    if widths is not None:
        meta["column_widths"] = widths
    model = {"name": "fixed_flyer", "config": {"materialized": "table", "meta": {"direct_mail": meta}}}
    return yaml.safe_dump({"version": 2, "models": [model]}, allow_unicode=True, sort_keys=False)


@pytest.mark.slow
def test_a_fixed_width_campaign_previews_runs_and_validates_in_the_sample_project(tmp_path, monkeypatch):
    from tests.conftest import copy_sample_project
    from tests.test_sample_project import RUN_TIME as SAMPLE_RUN_TIME
    from tests.test_sample_project import cli, landing_files

    monkeypatch.delenv("DIRECTMAIL_WAREHOUSE", raising=False)
    project = copy_sample_project(tmp_path / "project")
    (project / "models" / "campaigns" / "fixed_flyer.sql").write_text(E2E_MODEL)
    campaign_yaml = project / "models" / "campaigns" / "_fixed.yml"
    campaign_yaml.write_text(_e2e_yaml("mailhouse_fixed", E2E_WIDTHS))
    config = project / "direct_mail.yml"
    config.write_text(
        config.read_text().replace("\nconfigurations:\n", "\nconfigurations:" + E2E_CONFIGURATION)
    )

    preview = cli(project, "preview", "fixed_flyer", "--raw", "--limit", "3", "--run-time", SAMPLE_RUN_TIME)
    assert preview.exit_code == 0, preview.output
    ran = cli(project, "run", "fixed_flyer", "--run-time", SAMPLE_RUN_TIME, "--skip-build")
    assert ran.exit_code == 0, ran.output

    delivered = landing_files(project)["outbound/fixed_flyer.txt"]
    assert delivered.startswith(preview.stdout_bytes)
    lines = delivered.decode("utf-8").split("\r\n")
    assert lines[0] == "FIXED FLYER" and lines[-1] == ""  # no header row of labels; ends with CRLF
    rows = lines[1:-1]
    assert len(rows) > 100
    assert {len(row) for row in rows} == {sum(E2E_WIDTHS.values())}  # characters, whatever the script
    assert any(not row.isascii() for row in rows)
    amounts = [row[-12:] for row in rows]
    assert all(a.startswith(" ") and re.fullmatch(r" *-?\d+(\.\d+)?", a) for a in amounts)  # right-aligned
    assert all(row[30:40].rstrip() == row[30:40].strip() for row in rows)  # CP left-aligned

    campaign_yaml.write_text(
        _e2e_yaml("mailhouse_fixed", {k: v for k, v in E2E_WIDTHS.items() if k != "Ville"})
    )
    missing = cli(project, "validate", "fixed_flyer")
    assert missing.exit_code == 1
    key = "error: models/campaigns/_fixed.yml: models.fixed_flyer.config.meta.direct_mail.column_widths"
    assert f"{key}: no width for written column 'Ville'" in missing.output

    campaign_yaml.write_text(_e2e_yaml("mailhouse_csv", E2E_WIDTHS))
    elsewhere = cli(project, "validate", "fixed_flyer")
    assert elsewhere.exit_code == 1
    assert (
        f"{key}: only for format fixed_width; configuration 'mailhouse_csv' has format csv"
        in elsewhere.output
    )
