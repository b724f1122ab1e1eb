"""Configuration keys `date_format`, `timestamp_format`, `decimal_separator` and `compression: zip`, byte by
byte: typed columns written as the configuration says (text columns never changed), the same text on
DuckDB and PostgreSQL (Spark: tests/test_file_formats_spark.py), patterns refused at load naming file, key
and reason; zip parts each one reproducible archive of one member named as the part, hashed as delivered,
with parts, fixed width and gpg."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from directmail.builder import RunnerCredentials, TargetInfo
from directmail.config import load_config
from directmail.errors import ConfigError
from directmail.layout import FileLayout
from directmail.pipeline import CampaignRun, RunOptions, parse_run_time
from directmail.valueformats import DIRECTIVES, ValueFormats, pattern_problem, postgres_template
from directmail.warehouse.duckdb_warehouse import DuckDBDialect
from tests.runner_kit import RUN_TIME

FRENCH = {"date_format": "%d/%m/%Y", "decimal_separator": ","}
# Every kind of column: text that looks like a date or a decimal stays as it is; integers and booleans
# have no decimal point; a timestamp with a time zone is converted to UTC first.
TYPED_ROWS = """
create table campaign as select * from (values
    ('P1', 'Zoé', '2024-01-31', '12.50', date '2024-01-31', 12.50::decimal(10,2), 2.5::double, 1.25::float,
     7, true, timestamp '2024-01-31 06:05:04.25', timestamptz '2024-01-31 08:00:00+02'),
    ('P2', 'Jürgen', 'x', '1,5', date '2024-12-05', -1234.05::decimal(10,2), -0.1::double, 3::float,
     -12, false, timestamp '2024-12-05 23:59:59', timestamptz '2024-12-05 00:30:00+01'),
    ('P3', '', null, null, null, null, null, null, null, null, null, null)
) as t(profile_id, name, text_date, text_amount, since, amount, ratio, score, qty, is_vip, seen_at, seen_tz)
"""
LABELS = b"name,text_date,text_amount,since,amount,ratio,score,qty,is_vip,seen_at,seen_tz\n"
META = {"file_name": "out/fr.csv", "sort_by": ["profile_id"]}


def _findings(tmp_path: Path, configuration: dict) -> list[str]:
    """The findings of a direct_mail.yml whose configuration `fr` has these keys, as written in YAML."""
    lines = ["routing:", "  landing: {type: local, directory: landing}", "configurations:", "  fr:"]
    lines += [
        "    routing: landing",
        *(f"    {key}: {json.dumps(value)}" for key, value in configuration.items()),
    ]
    (tmp_path / "direct_mail.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        load_config(tmp_path)
    except ConfigError as exc:
        return [str(finding) for finding in exc.findings]
    return []


# -- validation ------------------------------------------------------------------------------------------


def test_portable_patterns_load(tmp_path):
    assert _findings(tmp_path, {**FRENCH, "timestamp_format": "%d/%m/%Y %H:%M:%S"}) == []
    assert _findings(tmp_path, {"date_format": "%Y%m%d", "timestamp_format": "%y-%j %-I:%M %p %f"}) == []
    assert _findings(tmp_path, {"date_format": "le %-d.%-m.%Y à 100%%", "encoding": "latin-1"}) == []


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (
            "date_format",
            "%d %b %Y",
            "%b: names of months and days (and the locale's formats) are not written alike by every "
            "warehouse; use numbers (supported: %Y %y %m %-m %d %-d %j %-j, %%)",
        ),
        (
            "date_format",
            "%d/%m/%Y %H:%M",
            "%H is a time of day, which a date does not have; use timestamp_format",
        ),
        (
            "timestamp_format",
            "%Y-%m-%dT%H:%M:%S%z",
            "%z: values are written in UTC (a timestamp with a time zone is converted first); write the zone "
            "as text, e.g. 'Z' or '+00:00' (supported: %Y %y %m %-m %d %-d %j %-j %H %-H %I %-I %p %M %-M "
            "%S %-S %f, %%)",
        ),
        (
            "timestamp_format",
            "%G-W%V",
            "%G: week numbers and weekdays are counted differently by the warehouses",
        ),
        ("date_format", "%e.%m.%Y", "%e: not a directive every warehouse writes alike"),
        ("date_format", "%d%-d", "two directives of one field side by side cannot be told apart in Spark"),
        ("date_format", "%Y/%m/%d %", "ends with a lone %; write %% for a percent sign"),
        ("date_format", "today", "holds no directive: every value would be written as the same text"),
        ("date_format", "", "empty: every value would be written empty"),
        ("timestamp_format", "%H\t%M", "holds a control character"),
    ],
)
def test_a_pattern_no_engine_can_write_alike_is_refused_naming_file_key_and_reason(
    tmp_path, key, value, reason
):
    [finding] = _findings(tmp_path, {key: value})
    assert finding.startswith(f"error: direct_mail.yml: configurations.fr.{key}: ")
    assert reason in finding


def test_a_pattern_the_encoding_cannot_hold_and_an_unknown_separator_are_refused(tmp_path):
    assert _findings(tmp_path, {"date_format": "%d→%m", "encoding": "cp1252"}) == [
        "error: direct_mail.yml: configurations.fr.date_format: '→' cannot be written in cp1252"
    ]
    assert _findings(tmp_path, {"decimal_separator": ";"}) == [
        "error: direct_mail.yml: configurations.fr.decimal_separator: Input should be '.' or ','"
    ]
    assert _findings(tmp_path, {"compression": "rar"}) == [
        "error: direct_mail.yml: configurations.fr.compression: Input should be 'none', 'gzip' or 'zip'"
    ]


# -- the text of each directive -------------------------------------------------------------------------

MOMENTS = [datetime(2024, 1, 5, 13, 4, 5, 123), datetime(2024, 12, 31, 0, 0, 0), datetime(1999, 7, 9, 9, 30)]
# Every directive, alone and between literal text that a warehouse's pattern syntax would read otherwise.
PATTERNS = [
    *DIRECTIVES,
    "%d/%m/%Y",
    "%Y%m%d%H%M%S%f",
    "%d%j%m%H%I%M",
    'l\'an %Y [x] {y} #z "q" \\ 100%% T Z FM YYYY dd',
]


def test_duckdb_writes_every_directive_as_python_strftime_does():
    import duckdb

    con, dialect = duckdb.connect(), DuckDBDialect()
    for pattern in PATTERNS:
        if pattern_problem(pattern, dates_only=False):
            continue
        formats = ValueFormats(timestamp_format=pattern)
        for moment in MOMENTS:
            literal = f"timestamp '{moment.isoformat(sep=' ')}'"
            [(text,)] = con.execute(f"select {dialect.as_text(literal, 'TIMESTAMP', formats)}").fetchall()
            assert text == moment.strftime(pattern), (pattern, moment)


def test_postgres_writes_every_pattern_as_duckdb_does(postgres):
    import duckdb

    pg = postgres.warehouse()
    duck, duck_dialect = duckdb.connect(), DuckDBDialect()
    typed = [  # (PostgreSQL type, DuckDB type, the runner's type name, literals)
        ("date", "date", "DATE", ["'2024-01-05'", "'1999-12-31'", "null"]),
        ("timestamp", "timestamp", "TIMESTAMP", [f"'{m.isoformat(sep=' ')}'" for m in MOMENTS]),
        ("timestamptz", "timestamptz", "TIMESTAMP WITH TIME ZONE", ["'2024-01-31 00:30:00+02'"]),
        ("numeric(10,2)", "decimal(10,2)", "NUMERIC", ["12.5", "-1234.05", "0", "null"]),
        ("float8", "double", "DOUBLE", ["2.5", "-0.1", "3.0", "1e20", "null"]),
        ("integer", "integer", "INTEGER", ["-12"]),
    ]
    try:
        for pattern in PATTERNS:
            for date_format in (pattern, "%d/%m/%Y"):
                if pattern_problem(pattern, dates_only=False) or pattern_problem(
                    date_format, dates_only=True
                ):
                    continue
                formats = ValueFormats(date_format, pattern, ",")
                for pg_type, duck_type, name, literals in typed:
                    for literal in literals:
                        pg_text = pg.rows(
                            f"select {pg.dialect.as_text(f'cast({literal} as {pg_type})', name, formats)} as v"
                        )
                        [(duck_text,)] = duck.execute(
                            f"select {duck_dialect.as_text(f'cast({literal} as {duck_type})', name, formats)}"
                        ).fetchall()
                        assert pg_text[0]["v"] == duck_text, (
                            pattern,
                            name,
                            literal,
                            postgres_template(pattern),
                        )
    finally:
        pg.close()


# -- whole runs, byte by byte ---------------------------------------------------------------------------


def test_a_french_mail_house_gets_its_dates_and_decimal_commas_text_untouched(kit):
    kit.sql(TYPED_ROWS)
    configuration = {"format": "delimited", "separator": ";", **FRENCH, "timestamp_format": "%d/%m/%Y %H:%M"}
    kit.run(kit.project(META, configuration))
    assert kit.landing()["out/fr.csv"] == (
        LABELS.replace(b",", b";")
        + "Zoé;2024-01-31;12.50;31/01/2024;12,50;2,5;1,25;7;true;31/01/2024 06:05;31/01/2024 06:00\n".encode()
        + "Jürgen;x;1,5;05/12/2024;-1234,05;-0,1;3,0;-12;false;05/12/2024 23:59;04/12/2024 23:30\n".encode()
        + b";;;;;;;;;;\n"
    )


def test_decimal_commas_in_csv_are_quoted_as_every_field_holding_the_separator(kit):
    kit.sql(TYPED_ROWS)
    kit.run(kit.project(META, {**FRENCH, "timestamp_format": "%Y%m%d-%H%M%S.%f"}))
    assert kit.landing()["out/fr.csv"] == (
        LABELS
        + 'Zoé,2024-01-31,12.50,31/01/2024,"12,50","2,5","1,25",7,true,20240131-060504.250000,'
        "20240131-060000.000000\n".encode()
        + 'Jürgen,x,"1,5",05/12/2024,"-1234,05","-0,1","3,0",-12,false,20241205-235959.000000,'
        "20241204-233000.000000\n".encode()
        + b",,,,,,,,,,\n"
    )


def test_the_defaults_are_contract_3s_iso_text(kit):
    kit.sql(TYPED_ROWS)
    kit.run(kit.project(META))
    default = kit.landing()["out/fr.csv"]
    assert (
        default.splitlines()[1]
        == (
            "Zoé,2024-01-31,12.50,2024-01-31,12.50,2.5,1.25,7,true,2024-01-31T06:05:04.250000,2024-01-31T06:00:00Z"
        ).encode()
    )
    kit.take_drop()
    explicit = {"date_format": "%Y-%m-%d", "decimal_separator": ".", "timestamp_format": None}
    kit.run(kit.project(META, explicit), run_time="2026-11-24T06:00:00Z")
    assert kit.landing()["out/fr.csv"] == default


def test_seed_rows_and_fixed_width_columns_take_the_formats_too(kit):
    kit.sql(
        """create table campaign as select * from (values
            ('P1', 'Zoé', date '2024-01-31', 12.50::decimal(10,2)),
            ('P2', 'Ana', null, -3.25::decimal(10,2))
        ) as t(profile_id, name, since, amount);
        create table proofs as select 'S1' as seed_id, 'Proof' as name, date '2024-02-29' as since,
            0.5::decimal(4,2) as amount"""
    )
    meta = {
        "file_name": "out/fixed.txt",
        "sort_by": ["profile_id"],
        "seed_list": "proofs",
        "column_widths": {"name": 5, "since": 10, "amount": 8},
    }
    kit.run(kit.project(meta, {"format": "fixed_width", **FRENCH}, seeds=["proofs"]))
    assert kit.landing()["out/fixed.txt"] == (
        ("Zoé  31/01/2024   12,50\n" + "Ana" + " " * 15 + "-3,25\nProof29/02/2024    0,50\n").encode()
    )


def test_rows_are_compared_as_written_and_ordered_by_their_values(kit):
    kit.sql(
        """create table campaign as select * from (values
            ('P1', 'Ana', date '2024-01-20'), ('P2', 'Ana', date '2024-01-05'), ('P3', 'Bea', date '2023-12-31')
        ) as t(profile_id, name, since)"""
    )
    record = kit.run(kit.project({"file_name": "m.csv", "sort_by": ["since"]}, {"date_format": "%m/%Y"}))
    assert kit.landing()["m.csv"] == b"name,since\nBea,12/2023\nAna,01/2024\n"
    assert record.duplicates_removed == 1  # P1 writes what P2, first by date, writes


# -- compression: zip -----------------------------------------------------------------------------------


def _member(archive: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    """The one member of a zip part, and its bytes (the CRC checked on reading)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        [info] = opened.infolist()
        assert opened.testzip() is None
        return info, opened.read(info)


def _assert_reproducible_layout(archive: bytes, member: str) -> None:
    """One member, its time fixed, Unix attributes 0644, no comment and no extra field in the central
    directory; the local header's only extra field is zip64's (sizes follow the data)."""
    info, _ = _member(archive)
    assert (info.filename, info.date_time, info.compress_type) == (member, (1980, 1, 1, 0, 0, 0), 8)
    assert (info.create_system, info.external_attr >> 16, info.extra, info.comment) == (3, 0o100644, b"", b"")
    assert info.flag_bits & 0x08  # a data descriptor: written as it streamed
    signature, *_, name_length, extra_length = struct.unpack("<4s5H3L2H", archive[:30])
    assert signature == b"PK\x03\x04" and name_length == len(member.encode())
    extra = archive[30 + name_length : 30 + name_length + extra_length]
    assert extra[:2] == b"\x01\x00" and extra_length == 20  # zip64: 8-byte sizes, zero until the descriptor
    assert archive.endswith(b"\x00\x00")  # the end record, no archive comment


def test_zip_parts_hold_one_member_named_as_the_part_hashed_as_delivered(kit):
    kit.sql(TYPED_ROWS)
    meta = {**META, "file_name": "out/{campaign}.csv", "header_note": "Fichier", "footer_note": "FIN"}
    configuration = {**FRENCH, "compression": "zip", "split_threshold": 2, "line_ending": "crlf"}
    record = kit.run(kit.project(meta, configuration))
    files = kit.landing()
    parts = ["out/campaign_001.csv.zip", "out/campaign_002.csv.zip"]
    assert sorted(files) == sorted([*parts, *(p + ".sha256" for p in parts), "out/campaign.manifest.json"])
    plain = [
        b"Fichier\r\n"
        + LABELS.replace(b"\n", b"\r\n")
        + 'Zoé,2024-01-31,12.50,31/01/2024,"12,50","2,5","1,25",7,true,2024-01-31T06:05:04.250000,'
        "2024-01-31T06:00:00Z\r\n".encode()
        + 'Jürgen,x,"1,5",05/12/2024,"-1234,05","-0,1","3,0",-12,false,2024-12-05T23:59:59,'
        "2024-12-04T23:30:00Z\r\nFIN\r\n".encode(),
        b"Fichier\r\n" + LABELS.replace(b"\n", b"\r\n") + b",,,,,,,,,,\r\nFIN\r\n",
    ]
    manifest = json.loads(files["out/campaign.manifest.json"])
    for part, expected, entry in zip(parts, plain, manifest["files"], strict=True):
        member = part.split("/")[-1].removesuffix(".zip")
        assert _member(files[part])[1] == expected
        _assert_reproducible_layout(files[part], member)
        digest = hashlib.sha256(files[part]).hexdigest()
        assert files[part + ".sha256"] == f"{digest}  {member}.zip\n".encode()
        assert entry == {
            "name": member + ".zip",
            "rows": entry["rows"],
            "bytes": len(files[part]),
            "sha256": digest,
        }
    assert [entry["rows"] for entry in manifest["files"]] == [2, 1]
    assert record.files == manifest["files"]

    # reproducible: another run id (another time, another project folder) writes the very same archives
    kit.take_drop()
    kit.run(kit.project(meta, configuration), run_time="2026-11-20T18:30:00Z")
    assert {name: data for name, data in kit.landing().items() if name.endswith(".zip")} == {
        part: files[part] for part in parts
    }


@pytest.mark.skipif(shutil.which("unzip") is None, reason="no unzip on PATH")
def test_unzip_reads_a_zip_part(kit, tmp_path):
    kit.rows(3)
    kit.run(kit.project({"file_name": "names.csv", "sort_by": ["profile_id"]}, {"compression": "zip"}))
    archive = tmp_path / "names.csv.zip"
    archive.write_bytes(kit.landing()["names.csv.zip"])
    listed = subprocess.run(["unzip", "-Z1", str(archive)], capture_output=True, text=True, check=True)
    assert listed.stdout == "names.csv\n"
    subprocess.run(["unzip", "-tq", str(archive)], capture_output=True, check=True)
    extracted = subprocess.run(["unzip", "-p", str(archive), "names.csv"], capture_output=True, check=True)
    assert extracted.stdout == (
        b"name,street,country_code\nName 0,0 Mail Street,FR\nName 1,1 Mail Street,FR\nName 2,2 Mail Street,FR\n"
    )


def test_a_big_zip_part_is_written_as_it_streams(kit):
    """Many batches, a member larger than the writer ever holds: the archive still reads back whole."""
    kit.rows(120_000, padding=40)
    kit.run(
        kit.project({"file_name": "big.csv", "sort_by": ["profile_id"]}, {"compression": "zip"}),
        batch_size=4096,
    )
    info, data = _member(kit.landing()["big.csv.zip"])
    assert info.file_size == len(data) > 8_000_000
    lines = data.splitlines()
    assert len(lines) == 120_001 and lines[-1].startswith(b"Name 119999,119999 Mail Street,FR,xxxx")


def test_fixed_width_zip_parts_with_a_timestamp(kit):
    kit.sql(
        "create table campaign as select 'P' || i as profile_id, 'N' || i as name, i * 1.5 as n from range(3) t(i)"
    )
    meta = {
        "file_name": "drop/out.txt",
        "append_timestamp": True,
        "sort_by": ["n"],
        "column_widths": {"name": 3, "n": 5},
    }
    kit.run(
        kit.project(meta, {"format": "fixed_width", "split_threshold": 2, "compression": "zip", **FRENCH})
    )
    files = kit.landing()
    first, second = "drop/out_20261123_060000_001.txt.zip", "drop/out_20261123_060000_002.txt.zip"
    assert sorted(files) == sorted(
        [first, first + ".sha256", second, second + ".sha256", "drop/out_20261123_060000.manifest.json"]
    )
    assert _member(files[first])[1] == b"N0   0,0\nN1   1,5\n"
    assert _member(files[second])[1] == b"N2   3,0\n"
    _assert_reproducible_layout(files[first], "out_20261123_060000_001.txt")


def test_zip_then_gpg_decrypts_to_the_archive(kit, mailhouse_key, tmp_path, monkeypatch):
    monkeypatch.setenv("GNUPGHOME", str(tmp_path / "user-gnupg"))
    kit.rows(5)
    meta = {"file_name": "catalog.csv", "sort_by": ["profile_id"]}
    configuration = {"split_threshold": 3, "compression": "zip"}
    kit.run(kit.project(meta, configuration), run_time="2026-01-01T00:00:00Z")
    plain = kit.landing()
    routing = {"type": "local", "directory": "encrypted", "encryption_key": str(mailhouse_key.public_key)}
    record = kit.run(kit.project(meta, configuration, routing=routing))
    root = kit.directory / "encrypted"
    delivered = {p.name: p.read_bytes() for p in root.iterdir()}
    assert sorted(delivered) == [
        "catalog.manifest.json",
        "catalog_001.csv.zip.gpg",
        "catalog_001.csv.zip.gpg.sha256",
        "catalog_002.csv.zip.gpg",
        "catalog_002.csv.zip.gpg.sha256",
    ]
    manifest = json.loads(delivered["catalog.manifest.json"])
    for entry, part in zip(manifest["files"], ("catalog_001.csv", "catalog_002.csv"), strict=True):
        encrypted = delivered[part + ".zip.gpg"]
        archive = mailhouse_key.decrypt(encrypted)
        assert archive == plain[part + ".zip"]  # the same archive, whatever the routing
        assert _member(archive)[0].filename == part
        digest = hashlib.sha256(encrypted).hexdigest()
        assert entry == {
            "name": part + ".zip.gpg",
            "rows": entry["rows"],
            "bytes": len(encrypted),
            "sha256": digest,
        }
        assert delivered[part + ".zip.gpg.sha256"] == f"{digest}  {part}.zip.gpg\n".encode()
    assert record.files == manifest["files"]


def test_zip_names_are_the_layouts_parts_and_a_gzip_drop_is_replaced_whole(kit):
    layout = FileLayout("out/x.csv", parse_run_time(RUN_TIME), compression="zip")
    assert layout.part_name(1, 2) == "out/x_001.csv.zip"
    assert FileLayout.archive_member(layout.part_name(1, 2)) == "x_001.csv"
    for name in (
        "out/x.csv",
        "out/x_002.csv.zip",
        "out/x_002.csv.zip.gpg",
        "out/x.csv.gz",
        "out/x_001.csv.gz.gpg",
    ):
        assert layout.is_part_name(name), name
    for name in ("out/x.csv.zip.sha256", "out/x.zip", "out/x.csv.gz.zip", "x.csv.zip"):
        assert not layout.is_part_name(name), name

    # the same run id again, now zipped: the gzip parts it delivered before are removed, not left beside
    kit.rows(3)
    meta = {"file_name": "out/x.csv", "sort_by": ["profile_id"]}
    kit.run(kit.project(meta, {"compression": "gzip", "split_threshold": 2}))
    assert sorted(kit.landing()) == sorted(
        ["out/x.manifest.json", *(f"out/x_00{i}.csv.gz{s}" for i in (1, 2) for s in ("", ".sha256"))]
    )
    kit.run(kit.project(meta, {"compression": "zip", "split_threshold": 2}), force=True)
    assert sorted(kit.landing()) == sorted(
        ["out/x.manifest.json", *(f"out/x_00{i}.csv.zip{s}" for i in (1, 2) for s in ("", ".sha256"))]
    )


def test_a_zip_file_name_is_measured_with_zip(kit):
    from directmail.campaign import Campaign, check_against_config, parse_campaign_spec
    from tests.runner_kit import make_config

    name = "out/" + "a" * 224 + ".csv"  # with .gz, the longest name a run writes is exactly 255 bytes
    spec, findings = parse_campaign_spec("c", {"configuration": "test", "file_name": name}, "models/c.yml")
    assert findings == []
    campaign = Campaign("c", spec, "model.p.c", "main.c", "models/c.yml")
    assert check_against_config(campaign, make_config({"compression": "gzip"})) == []
    [finding] = check_against_config(campaign, make_config({"compression": "zip"}))
    assert finding.key == "models.c.config.meta.direct_mail.file_name"
    assert "would give a file name of 256 bytes" in finding.reason and ".zip, .gpg" in finding.reason


# -- PostgreSQL: the same bytes as DuckDB ---------------------------------------------------------------


def _postgres_run(kit, postgres, tmp_path, meta: dict, configuration: dict) -> dict[str, bytes]:
    """The kit's campaign table moved into a fresh PostgreSQL database with its column types, and a run
    of it on the `postgres` target under the kit's project: what it delivered."""
    import duckdb

    from directmail.warehouse.postgres_warehouse import PostgresWarehouse

    database = f"formats_{tmp_path.name.replace('-', '_')}"[:63].lower()
    env = postgres.new_database(database)
    connection = {
        "host": env["PGHOST"],
        "port": int(env["PGPORT"]),
        "user": env["PGUSER"],
        "dbname": database,
    }
    target = TargetInfo("postgres", "test", RunnerCredentials(connection=connection))
    pg = PostgresWarehouse(target)
    pg_types = {
        "VARCHAR": "text",
        "DOUBLE": "float8",
        "FLOAT": "float4",
        "TIMESTAMP WITH TIME ZONE": "timestamptz",
    }
    with duckdb.connect(str(kit.database)) as con:
        columns = con.execute("describe campaign").fetchall()
        rows = con.execute("select * from campaign").fetchall()
    declared = ", ".join(f'"{name}" {pg_types.get(kind, kind.lower())}' for name, kind, *_ in columns)
    pg.execute("create schema main")
    pg.execute(f"create table main.campaign ({declared})")
    pg.execute("create table main.consents (profile_id text, marketing_action text, consent_value text)")
    for row in rows:
        values = ", ".join("null" if v is None else pg.dialect.literal(str(v)) for v in row)
        pg.execute(f"insert into main.campaign values ({values})")
    kit.sql("drop table campaign")  # the run reads PostgreSQL's only
    project = kit.project(meta, configuration)
    project.dbt._target_info = target
    CampaignRun(project, "campaign", RunOptions(parse_run_time(RUN_TIME), skip_build=True)).execute()
    assert pg.rows("select status from direct_mail.runs") == [{"status": "delivered"}]
    pg.close()
    return kit.landing()


@pytest.mark.parametrize(
    ("meta", "configuration"),
    [
        (META, {"format": "delimited", "separator": ";", **FRENCH, "timestamp_format": "%d/%m/%Y %H:%M"}),
        ({**META, "file_name": "out/fr.txt"}, {**FRENCH, "compression": "zip", "split_threshold": 2}),
    ],
    ids=["french", "zip"],
)
def test_postgres_delivers_the_bytes_duckdb_delivers(kit, postgres, tmp_path, meta, configuration):
    kit.sql(TYPED_ROWS)
    kit.run(kit.project(meta, configuration))
    on_duckdb = kit.landing()
    shutil.rmtree(kit.directory / "landing")
    on_postgres = _postgres_run(kit, postgres, tmp_path, meta, configuration)
    assert on_postgres == on_duckdb
    assert len(on_duckdb) == (5 if configuration.get("compression") else 3)
