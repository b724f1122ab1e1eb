"""I6 through the CLI: a return file is stored whole or not at all at any size, the counts printed are
the rows stored, and identities that suppress nobody are reported (or, with --strict, refuse the file).

Sizes above 150,000 rows: DuckDB 2.0.0 joined a staging table made `as select … limit 0` and filled in
the same transaction wrong from about 110,000 rows (see /work/shared/STACK-NOTES.md), and the ingest
then printed every return "already stored" and stored none.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from directmail.history import RETURNS
from directmail.warehouse.duckdb_warehouse import DuckDBDialect
from tests.returns_kit import record_mailed, returns_project, sql, warehouse_of, write_returns
from tests.test_sample_project import cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return returns_project(tmp_path, monkeypatch)


def stored(project: Path) -> tuple[int, list[tuple]]:
    """Rows in direct_mail.returns, and direct_mail.return_files' (file, return_rows, new_returns)."""
    database = warehouse_of(project)
    [(count,)] = sql(database, "select count(*) from direct_mail.returns")
    files = sql(
        database, "select source_file, return_rows, new_returns from direct_mail.return_files order by 1"
    )
    return count, files


@pytest.mark.parametrize("count", [150_000, 300_000])
def test_a_large_file_is_stored_whole_and_the_counts_are_the_rows_stored(project, tmp_path, count):
    half = count // 2
    first = write_returns(tmp_path / "week_1.csv", (f"N{i:09d}" for i in range(half)))
    result = cli(project, "returns", "ingest", str(first))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"ingested week_1.csv: {half:,} return(s), {half:,} new"
    assert stored(project) == (half, [("week_1.csv", half, half)])

    # A cumulative file: the first half again, and as many new returns.
    cumulative = write_returns(tmp_path / "week_2.csv", (f"N{i:09d}" for i in range(count)))
    result = cli(project, "returns", "ingest", str(cumulative))
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.splitlines()[0]
        == f"ingested week_2.csv: {count:,} return(s), {count - half:,} new, {half:,} already stored"
    )
    assert stored(project) == (count, [("week_1.csv", half, half), ("week_2.csv", count, count - half)])
    [(distinct,)] = sql(warehouse_of(project), "select count(distinct identity) from direct_mail.returns")
    assert distinct == count

    again = cli(project, "returns", "ingest", str(cumulative))
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        "ingested week_2.csv: already ingested (as week_2.csv); nothing stored"
    ]
    assert stored(project)[0] == count


def test_a_warehouse_that_stores_less_than_it_was_given_stores_nothing(project, tmp_path, monkeypatch):
    """The old staging shape, on which DuckDB 2.0.0 loses the rows: the counts disagree, the ingest is
    rolled back and the file is not recorded (its bytes are ingested once the warehouse is right)."""

    def limit_0_copy(self, relation, columns):
        return f"create temporary table {relation} as select *, true as _dm_dated from {RETURNS} limit 0"

    big = write_returns(tmp_path / "big.csv", (f"N{i:09d}" for i in range(150_000)))
    with monkeypatch.context() as patched:
        patched.setattr(DuckDBDialect, "create_empty_temporary_table", limit_0_copy)
        result = cli(project, "returns", "ingest", str(big))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: big.csv: nothing stored: the warehouse counted 150,000 staged")
    assert stored(project) == (0, [])

    result = cli(project, "returns", "ingest", str(big))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "ingested big.csv: 150,000 return(s), 150,000 new"
    assert stored(project) == (150_000, [("big.csv", 150_000, 150_000)])


# -- identities that suppress nobody --------------------------------------------------------------------

DOUBTFUL = (
    "\ufeffidentity,reason,returned_at\n"  # the encoding's byte order mark: not an identity's
    "P0001,moved,2026-11-02\n"
    "p0002,moved,2026-11-02\n"
    "P0003\u200b,moved,2026-11-02\n"
    '"P00\x0004",refused,2026-11-02\n'
    "\ufeffP0005,deceased,2026-11-02\n"
    "X0006,refused,2026-11-02\n"
    "H0007,moved,2026-11-02\n"
    "P0008,undeliverable,2026-11-02\n"
)
DOUBT_LINES = [
    "warning: doubtful.csv: 5 return(s) whose identity matches no mailed profile: "
    "line 4 'P0003\\u200b', line 5 'P00\\x0004', line 6 '\\ufeffP0005', line 7 'X0006', line 8 'H0007'",
    "warning: doubtful.csv: 1 return(s) whose identity matches a mailed profile only ignoring letter "
    "case: line 3 'p0002' (mailed as 'P0002')",
    "warning: doubtful.csv: 1 return(s) whose identity holds a control character: line 5 'P00\\x0004'",
    "warning: doubtful.csv: 2 return(s) whose identity holds an invisible format character: "
    "line 4 'P0003\\u200b', line 6 '\\ufeffP0005'",
]


def test_doubtful_identities_are_stored_and_reported_by_kind(project, tmp_path):
    record_mailed(warehouse_of(project), ["P0001", "P0002", "P0003", "P0004", "P0005", "P0008"], ["H0007"])
    path = tmp_path / "doubtful.csv"
    path.write_bytes(DOUBTFUL.encode())
    result = cli(project, "returns", "ingest", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["ingested doubtful.csv: 8 return(s), 8 new", *DOUBT_LINES]
    identities = sql(warehouse_of(project), "select identity from direct_mail.returns order by source_line")
    assert [i for (i,) in identities] == [
        "P0001",
        "p0002",
        "P0003\u200b",
        "P00\x0004",
        "\ufeffP0005",
        "X0006",
        "H0007",
        "P0008",
    ]


def test_strict_refuses_a_file_with_doubtful_identities_naming_each_line(project, tmp_path):
    record_mailed(warehouse_of(project), ["P0001", "P0002", "P0003", "P0004", "P0005", "P0008"], ["H0007"])
    path = tmp_path / "doubtful.csv"
    path.write_bytes(DOUBTFUL.encode())
    result = cli(project, "returns", "ingest", "--strict", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "doubtful.csv: refused, nothing stored: 6 bad rows",
        "doubtful.csv: line 3: identity 'p0002' matches a mailed profile only ignoring letter case "
        "('P0002') (--strict)",
        "doubtful.csv: line 4: identity 'P0003\\u200b' holds an invisible format character (U+200B); "
        "matches no mailed profile (--strict)",
        "doubtful.csv: line 5: identity 'P00\\x0004' holds a control character (U+0000); "
        "matches no mailed profile (--strict)",
        "doubtful.csv: line 6: identity '\\ufeffP0005' holds an invisible format character (U+FEFF); "
        "matches no mailed profile (--strict)",
        "doubtful.csv: line 7: identity 'X0006' matches no mailed profile (--strict)",
        "doubtful.csv: line 8: identity 'H0007' matches no mailed profile (--strict)",
    ]
    assert stored(project) == (0, [])

    # A clean file passes --strict; the refused one is stored without it (its bytes were not recorded).
    clean = write_returns(tmp_path / "clean.csv", ["P0001", "P0008"])
    result = cli(project, "returns", "ingest", "--strict", str(clean))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["ingested clean.csv: 2 return(s), 2 new"]
    result = cli(project, "returns", "ingest", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "ingested doubtful.csv: 8 return(s), 7 new, 1 already stored"
    assert stored(project) == (9, [("clean.csv", 2, 2), ("doubtful.csv", 8, 7)])


def test_the_report_shows_the_first_few_of_each_kind_and_counts_the_rest(project, tmp_path):
    big = write_returns(tmp_path / "unknown.csv", (f"N{i:09d}" for i in range(150_000)))
    result = cli(project, "returns", "ingest", str(big))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ingested unknown.csv: 150,000 return(s), 150,000 new",
        "warning: unknown.csv: 150,000 return(s) whose identity matches no mailed profile: line 2 "
        "'N000000000', line 3 'N000000001', line 4 'N000000002', line 5 'N000000003', line 6 "
        "'N000000004', and 149,995 more",
    ]
    # Refused with --strict, every line is named (the first 20), and the rest counted.
    unknown = write_returns(tmp_path / "unknown_2.csv", (f"M{i:09d}" for i in range(150_000)))
    result = cli(project, "returns", "ingest", "--strict", str(unknown))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[:2] == [
        "unknown_2.csv: refused, nothing stored: 150,000 bad rows",
        "unknown_2.csv: line 2: identity 'M000000000' matches no mailed profile (--strict)",
    ]
    assert lines[21:] == ["unknown_2.csv: … and 149,980 more bad row(s)"]
    assert stored(project) == (150_000, [("unknown.csv", 150_000, 150_000)])


def test_the_staging_table_is_declared_with_its_columns_on_every_dialect():
    """Not `as select … limit 0`: each dialect's own create statement, with the columns declared."""
    from directmail.warehouse.postgres_warehouse import PostgresDialect
    from directmail.warehouse.spark_warehouse import SparkDialect

    columns = [("identity", "varchar"), ("source_line", "integer")]
    statements = [
        dialect.create_empty_temporary_table(dialect.temporary_relation("_dm_x"), columns)
        for dialect in (DuckDBDialect(), PostgresDialect(), SparkDialect())
    ]
    assert statements == [
        'create temporary table temp.main."_dm_x" ("identity" varchar, "source_line" integer)',
        'create temporary table pg_temp."_dm_x" ("identity" varchar, "source_line" integer)',
        "create table directmail_scratch.`_dm_x` (`identity` varchar, `source_line` integer) using parquet",
    ]
