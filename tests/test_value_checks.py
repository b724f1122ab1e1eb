"""The value checks' three spellings agree: the warehouse's SQL condition (which lets a clean run skip
pandera), Python's (seed rows) and the pandera schema (which names the failures) fail the same rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from directmail.campaign import Campaign, parse_campaign_spec
from directmail.errors import ExtractInvalid
from directmail.extract import IDENTITY, ROW
from directmail.schema import ExtractValidator
from directmail.valuechecks import encodes, value_checks
from directmail.warehouse.duckdb_warehouse import DuckDBDialect

LABELS = ["line1", "city", "country", "note"]
VALUES = [
    ["1 Main St", "Paris", "FR", "ok"],
    ["", "Paris", "FR", "empty required field"],
    ["1 Main St", "Paris", "fr", "lower-case country"],
    ["1 Main St", "Paris", "FRA", "three letters"],
    ["1 Main St", "Paris", "FR\n", "country with a line feed"],
    ["1 Main St", "東京", "JP", "not in cp1252"],
    ["1 Main St", "Łódź", "PL", "not in latin-1"],
    ["1 Main St", "Zoé € ‰", "FR", "cp1252 yes, latin-1 no"],
    ["1 Main St", "Paris 😀", "FR", "past U+FFFF"],
    ["1 Main Street, flat 2", "Paris", "FR", "longer than 12"],
    ["1\r\nMain", "Paris", "FR", "line break"],
    ["1234567890", "Paris", "FR", "exactly the width"],
    ["1 Main St", "Paris", "FR", "ÿ" + "x" * 2 + chr(0x7F)],
]


def campaign(meta: dict) -> Campaign:
    spec, findings = parse_campaign_spec(
        "c",
        {
            "configuration": "test",
            "file_name": "c.csv",
            "address_columns": {
                "lines": ["line1"],
                "postal_code": "city",
                "city": "city",
                "country": "country",
            },
            **meta,
        },
        "models/c.yml",
    )
    assert not findings, findings
    return Campaign("c", spec, "model.test.c", "main.c", "models/c.yml")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
@pytest.mark.parametrize(
    ("meta", "widths"),
    [
        ({}, None),
        ({"max_lengths": {"line1": 12}}, None),
        ({"max_lengths": {"line1": 30}}, {"line1": 10, "city": 10, "country": 2, "note": 40}),
        ({"max_lengths": {"line1": 5}}, {"line1": 10, "city": 10, "country": 2, "note": 40}),
    ],
)
def test_sql_python_and_pandera_fail_the_same_rows(encoding, meta, widths, monkeypatch):
    monkeypatch.setattr("directmail.schema.MAX_REPORTED_FAILURES", 1000)  # every failure listed
    chosen = campaign(meta)
    checks = value_checks(chosen, LABELS, encoding, widths)
    con = duckdb.connect()
    columns = ", ".join(f"c{i}" for i in range(len(LABELS)))
    con.execute(f"create table t (n integer, {', '.join(f'c{i} varchar' for i in range(len(LABELS)))})")
    con.executemany(
        f"insert into t values (?, {', '.join('?' * len(LABELS))})", [[n, *v] for n, v in enumerate(VALUES)]
    )
    condition = checks.failing_sql(DuckDBDialect(), [f"c{i}" for i in range(len(LABELS))])
    by_sql = {n for (n,) in con.execute(f"select n from t where {condition}").fetchall()}
    assert con.execute(f"select count(*) from (select {columns} from t)").fetchone() == (len(VALUES),)

    by_python = {n for n, values in enumerate(VALUES) if checks.row_fails(values)}

    validator = ExtractValidator(chosen, LABELS, encoding, widths)
    batch = pa.RecordBatch.from_pydict(
        {
            ROW: list(range(len(VALUES))),
            IDENTITY: [str(n) for n in range(len(VALUES))],
            **{label: [row[i] for row in VALUES] for i, label in enumerate(LABELS)},
        }
    )
    validator.validate(batch)
    by_pandera = {failure.row for failure in validator.failures}
    assert validator.failure_count == len(validator.failures)

    assert by_sql == by_python == by_pandera
    assert {1, 2, 3, 4} <= by_sql
    assert (0 in by_sql) == (meta.get("max_lengths", {}).get("line1") == 5)


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "latin-1"])
def test_postgresql_spelling_fails_the_same_rows(postgres, encoding):
    """The PostgreSQL dialect's condition (`~`, char_length) agrees with Python's on the same values."""
    import adbc_driver_postgresql.dbapi as adbc

    from directmail.warehouse.postgres_warehouse import PostgresDialect

    widths = {"line1": 10, "city": 10, "country": 2, "note": 40}
    checks = value_checks(campaign({"max_lengths": {"line1": 9}}), LABELS, encoding, widths)
    table = pa.table(
        {"n": list(range(len(VALUES))), **{f"c{i}": [row[i] for row in VALUES] for i in range(len(LABELS))}}
    )
    condition = checks.failing_sql(PostgresDialect(), [f"c{i}" for i in range(len(LABELS))])
    with adbc.connect(postgres.uri) as con, con.cursor() as cursor:
        cursor.adbc_ingest(f"checked_{encoding.replace('-', '')}", table, mode="replace")
        cursor.execute(f"select n from checked_{encoding.replace('-', '')} where {condition}")
        by_sql = {n for (n,) in cursor.fetchall()}
    assert by_sql == {n for n, values in enumerate(VALUES) if checks.row_fails(values)}
    assert {1, 2, 3, 4, 10} <= by_sql


def test_a_clean_run_never_loads_pandera_and_a_failing_one_names_the_value(tmp_path):
    """The warehouse proves a clean extract clean: pandera, pandas and polars stay unloaded."""
    script = f"""
import sys
from pathlib import Path
from directmail.errors import ExtractInvalid
from tests.runner_kit import Kit
kit = Kit(Path({str(tmp_path)!r}))
kit.rows(1000)
kit.run(kit.project({{"file_name": "a.csv", "sort_by": ["profile_id"], "max_lengths": {{"name": 20}}}}))
print(sorted(name for name in ("pandera", "pandas", "polars") if name in sys.modules))
try:
    kit.run(kit.project({{"file_name": "b.csv", "sort_by": ["profile_id"], "max_lengths": {{"name": 7}}}}), force=True)
except ExtractInvalid as exc:
    print(str(exc).splitlines()[:2])
"""
    repository = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], cwd=repository, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[]",
        "['900 value(s) failed validation; nothing was delivered:', "
        "\"  row 101 (identity P000000100), column 'name': 8 characters, more than 7\"]",
    ]
    assert (
        (tmp_path / "landing" / "a.csv").read_bytes().startswith(b"name,street,country_code\nName 0,0 Mail")
    )
    assert not (tmp_path / "landing" / "b.csv").exists()


# What no value or note may hold (contract 3): C0 controls but TAB, LF and CR; DEL; C1 controls; U+2028
# and U+2029. TAB, CR and LF (quoted) stay legal, as do other characters a printer prints.
CONTROLS = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
FORBIDDEN = [*CONTROLS, "\u2028", "\u2029"]
LEGAL = ["\t", "\r\n", "\n", "\r", "\xa0", "é", "€", "😀", "\u200b", "\u2027", "\u202a", " ~"]


def _checked_rows(encoding: str) -> tuple[list[list[str]], set[int]]:
    """Rows of the four LABELS, each with one character in the note column; which of them must fail."""
    rows, failing = [], set()
    for n, character in enumerate([*LEGAL, *FORBIDDEN]):
        rows.append(["1 Main St", "Paris", "FR", f"a{character}b"])
        if character in FORBIDDEN or not encodes(character, encoding):
            failing.add(n)
    return rows, failing


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "latin-1"])
def test_control_characters_and_line_separators_fail_in_sql_python_and_pandera(encoding):
    rows, failing = _checked_rows(encoding)
    chosen = campaign({})
    checks = value_checks(chosen, LABELS, encoding)
    con = duckdb.connect()
    con.execute(f"create table t (n integer, {', '.join(f'c{i} varchar' for i in range(len(LABELS)))})")
    con.executemany("insert into t values (?, ?, ?, ?, ?)", [[n, *v] for n, v in enumerate(rows)])
    assert con.execute("select count(*) from t where strpos(c3, chr(0)) > 0").fetchone() == (1,)
    condition = checks.failing_sql(DuckDBDialect(), [f"c{i}" for i in range(len(LABELS))])
    by_sql = {n for (n,) in con.execute(f"select n from t where {condition}").fetchall()}
    by_python = {n for n, values in enumerate(rows) if checks.row_fails(values)}
    validator = ExtractValidator(chosen, LABELS, encoding)
    validator.validate(
        pa.RecordBatch.from_pydict(
            {
                ROW: list(range(len(rows))),
                IDENTITY: [str(n) for n in range(len(rows))],
                **{label: [row[i] for row in rows] for i, label in enumerate(LABELS)},
            }
        )
    )
    by_pandera = {failure.row for failure in validator.failures}
    assert by_sql == by_python == by_pandera == failing
    escape = len(LEGAL) + FORBIDDEN.index("\x1b")
    assert f"  row {escape} (identity {escape}), column 'note': 'a\\x1bb' holds U+001B" in (
        validator.describe_failures()
    )


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_postgresql_spelling_fails_control_characters_too(postgres, encoding):
    """PostgreSQL's `~` reads the same class (a text value there never holds NUL, which it refuses)."""
    import adbc_driver_postgresql.dbapi as adbc

    from directmail.warehouse.postgres_warehouse import PostgresDialect

    rows, failing = _checked_rows(encoding)
    kept = [n for n, row in enumerate(rows) if "\x00" not in row[3]]
    checks = value_checks(campaign({}), LABELS, encoding)
    table = pa.table({"n": kept, **{f"c{i}": [rows[n][i] for n in kept] for i in range(len(LABELS))}})
    condition = checks.failing_sql(PostgresDialect(), [f"c{i}" for i in range(len(LABELS))])
    name = f"controls_{encoding.replace('-', '')}"
    with adbc.connect(postgres.uri) as con, con.cursor() as cursor:
        cursor.adbc_ingest(name, table, mode="replace")
        cursor.execute(f"select n from {name} where {condition}")
        assert {n for (n,) in cursor.fetchall()} == failing & set(kept)


def test_a_control_character_stops_the_run_naming_row_identity_and_column(kit):
    """Through the real pipeline: nothing is delivered; TAB and a quoted CR LF are written as they are."""
    kit.sql(
        """create table campaign as select * from (values
            ('P1', 'tab' || chr(9) || 'here', 'one' || chr(13) || chr(10) || 'two'),
            ('P2', 'esc' || chr(27) || '[31m', 'ok'),
            ('P3', 'fine', 'split' || chr(8232) || 'line'),
            ('P4', 'nul' || chr(0), 'c1' || chr(133))
        ) as t(profile_id, name, remark)"""
    )
    project = kit.project({"file_name": "c.csv", "sort_by": ["profile_id"]})
    with pytest.raises(ExtractInvalid) as raised:
        kit.run(project)
    assert str(raised.value).splitlines() == [
        "4 value(s) failed validation; nothing was delivered:",
        "  row 2 (identity P2), column 'name': 'esc\\x1b[31m' holds U+001B, a control character a mail "
        "house's file cannot carry",
        "  row 4 (identity P4), column 'name': 'nul\\x00' holds U+0000, a control character a mail house's "
        "file cannot carry",
        "  row 3 (identity P3), column 'remark': 'split\\u2028line' holds U+2028, a control character a "
        "mail house's file cannot carry",
        "  row 4 (identity P4), column 'remark': 'c1\\x85' holds U+0085, a control character a mail "
        "house's file cannot carry",
    ]
    assert not (kit.directory / "landing").exists()
    assert kit.sql("select status from direct_mail.runs") == [("failed",)]

    kit.sql("delete from campaign where profile_id <> 'P1'")
    kit.run(project, run_time="2026-11-24T06:00:00Z")
    assert kit.landing()["c.csv"] == b'name,remark\ntab\there,"one\r\ntwo"\n'


def test_fixed_width_refuses_control_characters_as_every_format_does(kit):
    kit.sql("create table campaign as select 'P1' as profile_id, 'a' || chr(127) as name")
    project = kit.project({"file_name": "f.txt", "column_widths": {"name": 5}}, {"format": "fixed_width"})
    with pytest.raises(ExtractInvalid, match=r"column 'name': 'a\\x7f' holds U\+007F"):
        kit.run(project)
    assert not (kit.directory / "landing").exists()


@pytest.mark.parametrize("key", ["header_note", "footer_note"])
@pytest.mark.parametrize(
    ("character", "code"), [("\x1b", "U+001B"), ("\u2028", "U+2028"), ("\x00", "U+0000")]
)
def test_a_note_with_a_control_character_is_a_validation_finding(key, character, code):
    meta = {"configuration": "csv", "file_name": "c.csv", key: f"Winter{character}2026"}
    spec, findings = parse_campaign_spec("winter", meta, "models/campaigns/_c.yml")
    assert spec is None
    assert [str(f) for f in findings] == [
        f"error: models/campaigns/_c.yml: models.winter.config.meta.direct_mail.{key}: {key} holds {code}, "
        "a control character a mail house's file cannot carry"
    ]
    tabbed = {**meta, key: "Winter\t2026"}
    assert parse_campaign_spec("winter", tabbed, "models/campaigns/_c.yml")[1] == []


def test_the_run_checks_notes_and_labels_it_writes_for_control_characters():
    """header_findings (run time) refuses what campaign validation would, should a note reach it."""
    from directmail.valuechecks import header_findings

    chosen = campaign({})
    chosen.spec = chosen.spec.model_copy(update={"footer_note": "END\x7f"})
    findings = header_findings(chosen, ["line1", "ci\x1bty"], "utf-8")
    assert [str(f) for f in findings] == [
        "error: models/c.yml: models.c.config.meta.direct_mail.footer_note: footer_note holds U+007F, a "
        "control character a mail house's file cannot carry",
        "error: models/c.yml: models.c: a column label holds U+001B, a control character a mail house's "
        "file cannot carry",
    ]
