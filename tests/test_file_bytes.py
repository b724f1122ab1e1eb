"""Contract 3 at byte level: every option of a configuration, checked against the exact expected bytes."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from directmail.errors import AlreadyDelivered, ConfigError, DeliveryError, ExtractInvalid

MIXED_ROWS = """
create table campaign as select * from (values
    ('P3', 'Zoé', 'rue de l''Église; bât. "B"', 'line one' || chr(10) || 'line two', 10, date '2026-01-31', 12.50::decimal(10,2), timestamp '2026-11-23 06:00:00'),
    ('P1', 'Jürgen', 'Hauptstraße 5', null, 9, date '2026-02-01', 0.10::decimal(10,2), timestamp '2026-11-23 06:00:00.250'),
    ('P2', '', 'say "hi", twice', '', null, null, null, null)
) as t(profile_id, first_name, street, note, score, since, amount, seen_at)
"""


def test_csv_minimal_quoting_nulls_types_notes_and_order(kit):
    kit.sql(MIXED_ROWS)
    project = kit.project(
        {
            "file_name": "out/mixed.csv",
            "header_note": "Mixed, with notes",
            "footer_note": "END",
            "sort_by": ["score"],
        }
    )
    record = kit.run(project)

    expected = (
        b"Mixed, with notes\n"
        b"first_name,street,note,score,since,amount,seen_at\n"
        b"J\xc3\xbcrgen,Hauptstra\xc3\x9fe 5,,9,2026-02-01,0.10,2026-11-23T06:00:00.250000\n"
        b'Zo\xc3\xa9,"rue de l\'\xc3\x89glise; b\xc3\xa2t. ""B""","line one\nline two",10,2026-01-31,12.50,2026-11-23T06:00:00\n'
        b',"say ""hi"", twice",,,,,\n'
        b"END\n"
    )
    files = kit.landing()
    assert files["out/mixed.csv"] == expected
    assert files["out/mixed.csv.sha256"] == f"{hashlib.sha256(expected).hexdigest()}  mixed.csv\n".encode()
    manifest = json.loads(files["out/mixed.manifest.json"])
    assert manifest == {
        "campaign": "campaign",
        "run_id": "campaign@2026-11-23T06:00:00Z",
        "run_time": "2026-11-23T06:00:00Z",
        "total_rows": 3,
        "files": [
            {
                "name": "mixed.csv",
                "rows": 3,
                "bytes": len(expected),
                "sha256": hashlib.sha256(expected).hexdigest(),
            }
        ],
    }
    assert record.exported == 3 and record.targeted == 3


def test_delimited_cp1252_crlf_with_exported_identity(kit):
    kit.sql(
        """create table campaign as select * from (values
            ('P1', 'Müller', 'Straße; 1', '€ 5'),
            ('P2', 'Gonçalves', 'Rua "A"', 'x')
        ) as t(profile_id, "Last Name", "Street", "Offer")"""
    )
    configuration = {"format": "delimited", "separator": ";", "encoding": "cp1252", "line_ending": "crlf"}
    project = kit.project(
        {"file_name": "mail.txt", "export_identity": True, "footer_note": "Fin ÉTÉ"}, configuration
    )
    kit.run(project)
    expected = (
        "profile_id;Last Name;Street;Offer\r\n"
        'P1;Müller;"Straße; 1";€ 5\r\n'
        'P2;Gonçalves;"Rua ""A""";x\r\n'
        "Fin ÉTÉ\r\n"
    ).encode("cp1252")
    assert kit.landing()["mail.txt"] == expected


@pytest.mark.parametrize(
    ("separator", "line"),
    [("\t", b'a\t"b\tc"\td,e\n'), ("|", b'a|"b|c"|d,e\n'), ("&", b"a&b\tc&d,e\n")],
)
def test_other_separators_quote_only_their_own_character(kit, separator, line):
    kit.sql(
        "create table campaign as select 'P1' as profile_id, 'a' as x, 'b' || chr(9) || 'c' as y, 'd,e' as z"
    )
    if separator == "|":
        kit.sql("update campaign set y = 'b|c'")
    project = kit.project({"file_name": "f.txt"}, {"format": "delimited", "separator": separator})
    kit.run(project)
    assert kit.landing()["f.txt"] == f"x{separator}y{separator}z\n".encode() + line


def test_identical_rows_are_written_once_keeping_the_first_in_sort_order(kit):
    kit.sql(
        """create table campaign as select * from (values
            ('P9', 'Ana', 'Lisboa'), ('P2', 'Ana', 'Lisboa'), ('P5', 'Bea', 'Porto'), ('P1', 'Ana', null), ('P3', 'Ana', '')
        ) as t(profile_id, name, city)"""
    )
    project = kit.project({"file_name": "d.csv", "sort_by": ["name"]})
    record = kit.run(project)
    assert kit.landing()["d.csv"] == b"name,city\nAna,\nAna,Lisboa\nBea,Porto\n"
    assert record.duplicates_removed == 2  # P3 ('' = NULL) after P1, and P9 after P2
    sends = kit.sql("select profile_id from direct_mail.sends order by profile_id")
    assert [s[0] for s in sends] == ["P1", "P2", "P5"]


def test_sort_compares_values_numbers_numerically_nulls_last_and_desc(kit):
    kit.sql(
        """create table campaign as select * from (values
            ('P1', 9, 'b'), ('P2', 10, 'a'), ('P3', null, 'c'), ('P4', 10, 'É'), ('P5', 100, 'z'), ('P6', 9, null)
        ) as t(profile_id, n, s)"""
    )
    project = kit.project({"file_name": "s.csv", "sort_by": ["n", "s desc"]})
    kit.run(project)
    assert kit.landing()["s.csv"] == b"n,s\n9,b\n9,\n10,\xc3\x89\n10,a\n100,z\n,c\n"


def test_split_parts_keep_global_order_with_timestamp_and_notes(kit):
    kit.sql("create table campaign as select 'P' || i as profile_id, i as n from range(5) t(i)")
    project = kit.project(
        {
            "file_name": "drops/list.csv",
            "append_timestamp": True,
            "header_note": "H",
            "footer_note": "F",
            "sort_by": ["n desc"],
        },
        {"split_threshold": 2},
    )
    record = kit.run(project, run_time="2026-11-23T07:08:09+01:00")
    files = kit.landing()
    assert files["drops/list_20261123_060809_001.csv"] == b"H\nn\n4\n3\nF\n"
    assert files["drops/list_20261123_060809_002.csv"] == b"H\nn\n2\n1\nF\n"
    assert files["drops/list_20261123_060809_003.csv"] == b"H\nn\n0\nF\n"
    manifest = json.loads(files["drops/list_20261123_060809.manifest.json"])
    assert [(f["name"], f["rows"]) for f in manifest["files"]] == [
        ("list_20261123_060809_001.csv", 2),
        ("list_20261123_060809_002.csv", 2),
        ("list_20261123_060809_003.csv", 1),
    ]
    assert record.run_id == "campaign@2026-11-23T06:08:09Z"
    sends = kit.sql("select profile_id, file_name from direct_mail.sends order by profile_id")
    assert sends[0] == ("P0", "drops/list_20261123_060809_003.csv")
    assert sends[4] == ("P4", "drops/list_20261123_060809_001.csv")


def test_exactly_the_threshold_gives_one_file_without_suffix(kit):
    kit.sql("create table campaign as select 'P' || i as profile_id, i as n from range(2) t(i)")
    kit.run(kit.project({"file_name": "one.csv", "sort_by": ["n"]}, {"split_threshold": 2}))
    assert kit.landing()["one.csv"] == b"n\n0\n1\n"


def test_gzip_and_utf8_bom_checksums_cover_the_delivered_bytes(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'Zoé' as name")
    kit.run(
        kit.project(
            {"file_name": "z.csv", "header_note": "note"}, {"compression": "gzip", "encoding": "utf-8-sig"}
        )
    )
    files = kit.landing()
    delivered = files["z.csv.gz"]
    assert gzip.decompress(delivered) == b"\xef\xbb\xbfnote\nname\nZo\xc3\xa9\n"
    assert files["z.csv.gz.sha256"] == f"{hashlib.sha256(delivered).hexdigest()}  z.csv.gz\n".encode()
    assert json.loads(files["z.manifest.json"])["files"][0]["name"] == "z.csv.gz"


def test_an_empty_audience_delivers_nothing_and_is_recorded_empty_by_default(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'x' as name, 'n' as consent")
    project = kit.project({"file_name": "empty.csv"})
    kit.sql("insert into consents values ('P1', 'direct_mail', 'n')")
    record = kit.run(project)
    assert record.status == "empty"
    assert not (kit.directory / "landing").exists() or kit.landing() == {}
    assert kit.sql("select run_id, status, exported, files from direct_mail.runs") == [
        ("campaign@2026-11-23T06:00:00Z", "empty", 0, "[]")
    ]
    assert kit.sql("select profile_id, reason from direct_mail.exclusions") == [("P1", "no_postal_consent")]
    assert kit.sql("select count(*) from direct_mail.sends") == [(0,)]
    # an empty run id is not a delivered one: the same slot runs again (and may find people then)
    kit.sql("delete from consents")
    assert kit.run(project).status == "delivered"
    assert kit.landing()["empty.csv"] == b"name,consent\nx,n\n"


def test_on_empty_deliver_writes_a_header_only_file(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'x' as name where false")
    project = kit.project({"file_name": "empty.csv", "footer_note": "0 records"}, {"on_empty": "deliver"})
    record = kit.run(project)
    assert kit.landing()["empty.csv"] == b"name\n0 records\n"
    assert (record.status, record.exported) == ("delivered", 0)


def test_on_empty_fail_fails_the_run_and_delivers_nothing(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'x' as name where false")
    with pytest.raises(ExtractInvalid, match="no profile to export"):
        kit.run(kit.project({"file_name": "empty.csv"}, {"on_empty": "fail"}))
    assert not (kit.directory / "landing").exists()
    assert kit.sql("select status from direct_mail.runs") == [("failed",)]


def test_value_the_encoding_cannot_hold_stops_the_run_naming_row_and_column(kit):
    kit.sql(
        """create table campaign as select * from (values
            ('P1', 'Paris', 'FR'), ('P2', '東京', 'JP'), ('P3', 'Łódź', 'PL')
        ) as t(profile_id, city, country)"""
    )
    project = kit.project({"file_name": "e.txt", "sort_by": ["profile_id"]}, {"encoding": "cp1252"})
    with pytest.raises(ExtractInvalid) as raised:
        kit.run(project)
    message = str(raised.value)
    assert "row 2 (identity P2), column 'city': '東京' cannot be written in cp1252" in message
    assert "row 3 (identity P3), column 'city': 'Łź' cannot be written in cp1252" in message
    assert not (kit.directory / "landing").exists()
    assert kit.sql("select status from direct_mail.runs") == [("failed",)]


def test_required_address_fields_and_country_codes_are_validated(kit):
    kit.sql(
        """create table campaign as select * from (values
            ('P1', '1 High St', 'London', 'SW1A 2AA', 'GB'),
            ('P2', '', 'Leeds', 'LS1 4DY', 'GB'),
            ('P3', '2 Main St', 'Boston', '02108', 'USA')
        ) as t(profile_id, line1, city, zip, country)"""
    )
    address = {"lines": ["line1"], "postal_code": "zip", "city": "city", "country": "country"}
    project = kit.project({"file_name": "a.csv", "address_columns": address, "sort_by": ["profile_id"]})
    with pytest.raises(ExtractInvalid) as raised:
        kit.run(project)
    assert "row 2 (identity P2), column 'line1': required address field is empty" in str(raised.value)
    assert "row 3 (identity P3), column 'country': 'USA' is not an ISO 3166-1 alpha-2 country code" in str(
        raised.value
    )


def test_consent_refusals_are_excluded_for_the_configured_marketing_action_only(kit):
    kit.sql("create table campaign as select 'P' || i as profile_id, i as n from range(1, 6) t(i)")
    kit.project({"file_name": "c.csv"})  # creates the consents table
    kit.sql(
        """insert into consents values
            ('P1', 'direct_mail', 'y'), ('P2', 'direct_mail', 'n'), ('P3', 'direct_mail', ''),
            ('P4', 'email', 'n'), ('P5', 'direct_mail', 'N')"""
    )
    record = kit.run(kit.project({"file_name": "c.csv", "sort_by": ["n"]}))
    assert kit.landing()["c.csv"] == b"n\n1\n3\n4\n"
    assert record.excluded["no_postal_consent"] == 2


def test_holdout_is_deterministic_per_campaign_and_profile_and_recorded(kit):
    kit.sql("create table campaign as select 'P' || i as profile_id, i as n from range(2000) t(i)")
    project = kit.project({"file_name": "h.csv", "holdout_percent": 10})
    first = kit.run(project, run_time="2026-11-23T06:00:00Z")
    held_first = kit.sql("select profile_id from direct_mail.sends where is_holdout order by 1")
    kit.take_drop()  # the mail house took the first drop: the next one can use the same names
    kit.run(project, run_time="2026-11-30T06:00:00Z")
    held_second = kit.sql(
        "select profile_id from direct_mail.sends where is_holdout and run_id like '%11-30%' order by 1"
    )
    assert held_first == held_second
    assert 150 <= first.holdout <= 250  # 10 % of 2,000, give or take the hash
    assert first.exported + first.holdout == 2000
    assert kit.sql(
        "select count(*) from direct_mail.sends where run_id like '%11-23%' and file_name is null"
    ) == [(first.holdout,)]


def test_a_run_id_is_delivered_once_unless_forced(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'x' as v")
    project = kit.project({"file_name": "once.csv"})
    kit.run(project)
    (kit.directory / "landing" / "once.csv").write_bytes(b"touched")
    with pytest.raises(AlreadyDelivered):
        kit.run(project)
    assert kit.landing()["once.csv"] == b"touched"
    record = kit.run(project, force=True)
    assert kit.landing()["once.csv"] == b"v\nx\n"
    assert record.attempt == 2
    assert kit.sql("select count(*), max(attempt) from direct_mail.runs") == [(1, 2)]
    assert kit.sql("select count(*) from direct_mail.sends") == [(1,)]


def test_a_failed_delivery_leaves_no_file_under_its_final_name_and_can_be_rerun(kit):
    kit.sql("create table campaign as select 'P' || i as profile_id, i as n from range(3) t(i)")
    project = kit.project({"file_name": "p.csv", "sort_by": ["n"]}, {"split_threshold": 1})
    blocker = kit.directory / "landing" / "p_002.csv"
    blocker.mkdir(parents=True)  # a directory where the second part must go: the rename fails
    with pytest.raises(DeliveryError):
        kit.run(project)
    names = set(kit.landing())
    assert "p.manifest.json" not in names and not any(".partial" in n for n in names)
    assert kit.sql("select status from direct_mail.runs") == [("failed",)]
    blocker.rmdir()
    record = kit.run(project)
    assert record.status == "delivered"
    assert kit.landing()["p_002.csv"] == b"n\n1\n"
    assert "p.manifest.json" in kit.landing()


def test_dry_run_writes_nothing_to_the_landing_folder_or_history(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'x' as v")
    record = kit.run(kit.project({"file_name": "dry.csv"}), dry_run=True)
    assert (record.status, record.exported) == ("dry run", 1)
    kit.sql("delete from campaign")
    assert kit.run(kit.project({"file_name": "dry.csv"}), dry_run=True).status == "dry run: empty"
    assert not (kit.directory / "landing").exists()
    assert kit.sql("select count(*) from direct_mail.runs") == [(0,)]
    assert (kit.directory / ".directmail" / "dry-run").is_dir()


def test_escape_formulas_prefixes_text_a_spreadsheet_would_run_and_leaves_numbers(kit):
    kit.sql(
        """create table campaign as select * from (values
            ('P1', '=HYPERLINK("http://x")', -5, 'ok'),
            ('P2', '+33 1 23', 7, '@home'),
            ('P3', '-minus', 0, chr(9) || 'tab'),
            ('P4', 'plain', -1, chr(13) || 'cr')
        ) as t(profile_id, note, balance, other)"""
    )
    project = kit.project({"file_name": "f.csv", "sort_by": ["profile_id"]}, {"escape_formulas": True})
    kit.run(project)
    assert kit.landing()["f.csv"] == (
        b"note,balance,other\n"
        b'"\'=HYPERLINK(""http://x"")",-5,ok\n'
        b"'+33 1 23,7,'@home\n"
        b"'-minus,0,'\ttab\n"
        b'plain,-1,"\'\rcr"\n'
    )
    plain = kit.project({"file_name": "g.csv", "sort_by": ["profile_id"]})
    kit.run(plain, run_time="2026-11-24T06:00:00Z")
    assert kit.landing()["g.csv"].splitlines()[2] == b"+33 1 23,7,@home"


def test_escape_formulas_prefixes_notes_and_header_labels_too(kit):
    kit.sql(
        """create table campaign as select * from (values ('P1', '=1+1', 'a'), ('P2', 'x', '@b'))
        as t(profile_id, "=total", "name, first")"""
    )
    meta = {"file_name": "f.csv", "sort_by": ["profile_id"], "header_note": "=cmd|' /C calc'!A0"}
    project = kit.project(
        {**meta, "footer_note": "@SUM(1+1)"}, {"escape_formulas": True, "split_threshold": 1}
    )
    kit.run(project)
    files = kit.landing()
    assert files["f_001.csv"] == (
        b"'=cmd|' /C calc'!A0\n"  # a note is written as is: its ' only, no quoting
        b'\'=total,"name, first"\n'
        b"'=1+1,a\n"
        b"'@SUM(1+1)\n"
    )
    assert files["f_002.csv"] == b"'=cmd|' /C calc'!A0\n'=total,\"name, first\"\nx,'@b\n'@SUM(1+1)\n"
    notes = [("+1", b"'+1"), ("-", b"'-"), ("\tTAB", b"'\tTAB"), ("END", b"END"), ("a=b", b"a=b")]
    for day, (note, written) in enumerate(notes, start=10):
        single = kit.project(
            {**meta, "file_name": f"n{day}.csv", "header_note": note}, {"escape_formulas": True}
        )
        kit.run(single, run_time=f"2026-11-{day}T06:00:00Z")
        assert kit.landing()[f"n{day}.csv"].splitlines()[0] == written
    plain = kit.project({**meta, "file_name": "g.csv", "footer_note": "@SUM(1+1)"})
    kit.run(plain, run_time="2026-11-25T06:00:00Z")
    assert kit.landing()["g.csv"] == (
        b"=cmd|' /C calc'!A0\n=total,\"name, first\"\n=1+1,a\nx,@b\n@SUM(1+1)\n"
    )


def test_escape_formulas_prefixes_the_notes_of_a_fixed_width_file_and_its_preview(kit):
    from directmail.pipeline import CampaignRun, RunOptions, parse_run_time

    kit.sql("create table campaign as select 'P1' as profile_id, '-x' as nom")
    meta = {"file_name": "w.txt", "header_note": "-HEAD", "footer_note": "+FOOT", "column_widths": {"nom": 4}}
    project = kit.project(meta, {"format": "fixed_width", "escape_formulas": True})
    kit.run(project)
    assert kit.landing()["w.txt"] == b"'-HEAD\n'-x \n'+FOOT\n"
    options = RunOptions(parse_run_time("2026-11-24T06:00:00Z"), dry_run=True, skip_build=True)
    lines, _ = CampaignRun(project, "campaign", options).preview(limit=5)
    assert b"".join(lines) == b"'-HEAD\n'-x \n'+FOOT\n"


def test_a_draft_is_previewed_and_dry_run_but_never_delivered(kit):
    from directmail.pipeline import CampaignRun, RunOptions, parse_run_time

    kit.rows(3)
    project = kit.project({"file_name": "d.csv", "status": "draft"})
    with pytest.raises(ConfigError, match="drafts never run"):
        kit.run(project)
    options = RunOptions(parse_run_time("2026-11-23T06:00:00Z"), dry_run=True, skip_build=True)
    lines, _ = CampaignRun(project, "campaign", options).preview(limit=2)
    assert b"".join(lines) == b"name,street,country_code\nName 0,0 Mail Street,FR\nName 1,1 Mail Street,FR\n"
    assert kit.run(project, dry_run=True).exported == 3
    assert not (kit.directory / "landing").exists()
    assert kit.sql("select count(*) from information_schema.tables where table_name = 'runs'") == [(1,)]
    assert kit.sql("select count(*) from direct_mail.runs") == [(0,)]
