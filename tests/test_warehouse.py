"""The DuckDB side of the warehouse interface: labels as declared, text formatting, streaming."""

from __future__ import annotations

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
