"""The DuckDB side of the warehouse interface: labels as declared, text formatting, streaming."""

from __future__ import annotations

import pytest

from directmail.textformat import LineEncoder
from directmail.warehouse import query_labels
from directmail.warehouse.duckdb_warehouse import DuckDBWarehouse


def test_declared_labels_see_duplicates_behind_select_star_from_cte():
    with DuckDBWarehouse(":memory:") as warehouse:
        sql = 'with a as (select 1 as x), b as (select x as "City", x as "city", x from a) select * from b'
        assert query_labels(warehouse, sql) == ["City", "city", "x"]
        assert [name for name, _ in warehouse.describe(sql)] == ["City", "city_1", "x"]


def test_labels_fall_back_to_describe_when_the_query_shape_is_not_plain():
    with DuckDBWarehouse(":memory:") as warehouse:
        sql = "with a as (select 1 as x, 2 as y) select * exclude (y) from a"
        assert query_labels(warehouse, sql) == ["x"]


def test_stream_yields_bounded_arrow_batches():
    with DuckDBWarehouse(":memory:") as warehouse:
        batches = list(warehouse.stream("select range as n from range(10000)", batch_size=1024))
        assert sum(b.num_rows for b in batches) == 10000
        assert max(b.num_rows for b in batches) <= 2048


TRICKY_VALUES = [
    "plain",
    "",
    'say "hi"',
    "a,b",
    "a;b",
    "a|b",
    "a&b",
    "tab\there",
    "two\nlines",
    "cr\rhere",
    "東京",
]


@pytest.mark.parametrize("separator", [",", ";", "|", "&", "\t"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_rows_quoted_in_sql_match_the_header_encoder(separator, newline):
    """Rows are quoted and joined by the warehouse, the header row by Python: both follow one rule."""
    encoder = LineEncoder(separator, newline, "utf-8")
    with DuckDBWarehouse(":memory:") as warehouse:
        d = warehouse.dialect
        values = [d.literal(v) for v in TRICKY_VALUES]
        line = warehouse.query(f"select {d.text_line(values, separator, newline)} as line")["line"][0].as_py()
    assert line.encode() == encoder.line(TRICKY_VALUES)
