"""DuckDB, the embedded default warehouse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from directmail.builder import RESOURCE_SETTINGS
from directmail.valueformats import ISO, ValueFormats, duckdb_pattern
from directmail.warehouse.sqltext import CommonSql, class_range

if TYPE_CHECKING:  # pyarrow is imported by DuckDB when a result is fetched as Arrow: reads stay light
    import pyarrow as pa


class DuckDBDialect(CommonSql):
    def as_text(self, expression: str, type_name: str, formats: ValueFormats = ISO) -> str:
        kind = type_name.upper()
        timestamp = formats.timestamp_format
        if kind == "VARCHAR":
            text = expression
        elif kind == "DATE":
            text = self._strftime(expression, formats.date_format)
        elif kind.startswith("TIMESTAMP WITH TIME ZONE") or kind == "TIMESTAMPTZ":
            utc = f"({expression} at time zone 'UTC')"
            text = _iso_timestamp(utc, suffix="Z") if timestamp is None else self._strftime(utc, timestamp)
        elif kind.startswith("TIMESTAMP"):
            value = f"cast({expression} as timestamp)"
            text = _iso_timestamp(value) if timestamp is None else self._strftime(value, timestamp)
        else:
            text = self.decimal_text(f"cast({expression} as varchar)", kind, formats)
        return f"coalesce({text}, '')"

    def _strftime(self, expression: str, pattern: str) -> str:
        return f"strftime({expression}, {self.literal(duckdb_pattern(pattern))})"

    def holdout_bucket(self, key_expression: str) -> str:
        return f"cast(cast('0x' || left(md5({key_expression}), 8) as ubigint) % 10000 as integer)"

    def days_before(self, moment: str, days: int) -> str:
        return f"(cast({self.literal(moment)} as timestamp) - to_days({int(days)}))"

    def text_key(self, expressions: list[str]) -> str:
        parts = ", ".join(f"lower(trim(coalesce(cast({e} as varchar), '')))" for e in expressions)
        return f"md5(concat_ws('|', {parts}))"

    def row_hash(self, expressions: list[str]) -> str:
        return f"hash({', '.join(expressions)})"

    def contains(self, field: str, needle: str) -> str:
        return f"contains({field}, {needle})"

    def full_match(self, expression: str, pattern: str) -> str:
        return f"regexp_full_match({expression}, {self.literal(pattern)})"

    def matches_ranges(self, expression: str, ranges: tuple[tuple[int, int], ...]) -> str:
        body = "".join(class_range(a, b, "\\x{{{:04X}}}") for a, b in ranges)  # RE2: \x{hex}, no \u
        return self.full_match(expression, f"[{body}]*")

    def insertion_position(self) -> str:
        # Rows keep the order they were inserted in (preserve_insertion_order, set on the connection).
        return "rowid"

    def position_column(self, order: str) -> str:
        return ""  # rowid is the position: no window, no second sort

    def position_order(self) -> str:
        return ""

    def code_point_order(self, expression: str) -> str:
        return expression  # DuckDB's default collation compares by code point

    def temporary_relation(self, name: str) -> str:
        return f"temp.main.{self.quote(name)}"


def _output_name(expression: dict) -> str | None:
    if expression.get("alias"):
        return expression["alias"]
    if expression.get("class") == "COLUMN_REF":
        return expression["column_names"][-1]
    return None


def _iso_timestamp(expression: str, suffix: str = "") -> str:
    """ISO 8601 with a 'T'; fractional seconds only when there are some."""
    fraction = (
        f"case when epoch_us({expression}) % 1000000 = 0 then '' else strftime({expression}, '.%f') end"
    )
    return f"strftime({expression}, '%Y-%m-%dT%H:%M:%S') || {fraction} || '{suffix}'"


# The runner's memory stays bounded whatever the audience: above this, DuckDB spills to its temp_directory
# (next to the database file). 768MB of buffers plus the interpreter and libraries keep a run under 1 GiB
# of RSS (995 MiB at 10 M profiles); more sorts faster. The dbt profile's RESOURCE_SETTINGS apply too.
DEFAULT_SETTINGS: dict[str, Any] = {"memory_limit": "768MB"}


class DuckDBWarehouse:
    transactional = True

    def __init__(self, path: Path | str, settings: dict[str, Any] | None = None, read_only: bool = False):
        """`read_only`: for side commands, which must neither block a run nor create the file. A file
        that does not exist yet reads as an empty database; one a writer holds raises WarehouseBusy."""
        self.path = path
        location = str(path)
        if location != ":memory:" and read_only and not Path(path).exists():
            location = ":memory:"  # nothing recorded yet: an empty database, and no file created
        elif location != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(location, read_only=read_only and location != ":memory:")
        except duckdb.IOException as exc:
            if read_only and "lock" in str(exc).lower():
                from directmail.warehouse import WarehouseBusy

                raise WarehouseBusy(
                    "warehouse busy: another process has it open for writing (a run in progress?); "
                    "try again when it ends"
                ) from None
            raise
        self.dialect = DuckDBDialect()
        chosen = {name: value for name, value in (settings or {}).items() if name in RESOURCE_SETTINGS}
        for name, value in {**DEFAULT_SETTINGS, **chosen}.items():
            literal = self.dialect.literal(value) if isinstance(value, str) else str(value).lower()
            self._con.execute(f"set {name} = {literal}")
        # The extract streams a staging table in the order it was written (insertion_position).
        self._con.execute("set preserve_insertion_order = true")

    def stream(self, sql: str, batch_size: int = 65_536) -> pa.RecordBatchReader:
        return self._con.sql(sql).to_arrow_reader(batch_size)

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        return self._con.sql(sql, params=params or None).to_arrow_table()

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cursor = self._con.execute(sql, params or [])
        names = [column[0] for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        self._con.execute(sql, params or [])

    def describe(self, sql: str) -> list[tuple[str, str]]:
        return [(row[0], row[1]) for row in self._con.execute(f"describe {sql}").fetchall()]

    def declared_columns(self, sql: str) -> list[str] | None:
        """The output column names a query declares, duplicates kept, or None when it cannot tell.

        DuckDB renames duplicates when a CTE is read with `select *` (`city`, `city_1`), which hides a
        duplicate label in the dbt style's final `select * from <cte>`; the parsed query does not.
        """
        try:
            row = self._con.execute("select json_serialize_sql(?)", [sql]).fetchone()
            if row is None:
                return None
            tree = json.loads(row[0])
            node = tree["statements"][0]["node"]
        except (duckdb.Error, KeyError, IndexError, TypeError, json.JSONDecodeError):
            return None
        ctes: dict[str, dict] = {}
        for _ in range(100):
            if node.get("type") != "SELECT_NODE":
                return None
            ctes.update({c["key"]: c["value"]["query_node"] for c in node.get("cte_map", {}).get("map", [])})
            select_list, source = node["select_list"], node.get("from_table") or {}
            is_star = len(select_list) == 1 and select_list[0].get("class") == "STAR"
            if is_star and source.get("type") == "BASE_TABLE" and source.get("table_name") in ctes:
                if select_list[0].get("exclude_list") or select_list[0].get("replace_list"):
                    return None
                node = ctes[source["table_name"]]
                continue
            names = [name for expression in select_list if (name := _output_name(expression)) is not None]
            return names if len(names) == len(select_list) else None
        return None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all (a crash rolls them back)."""
        self._con.execute("begin transaction")
        try:
            yield
        except BaseException:
            self._con.execute("rollback")
            raise
        self._con.execute("commit")

    def append(self, table: str, rows: pa.Table) -> None:
        self._con.register("_directmail_rows", rows)
        try:
            columns = ", ".join(self.dialect.quote(name) for name in rows.column_names)
            self._con.execute(f"insert into {table} ({columns}) select {columns} from _directmail_rows")
        finally:
            self._con.unregister("_directmail_rows")

    @contextmanager
    def side_stream(self, sql: str, batch_size: int = 65_536) -> Iterator[pa.RecordBatchReader]:
        cursor = self._con.cursor()  # a connection of its own to the same database
        try:
            yield cursor.sql(sql).to_arrow_reader(batch_size)
        finally:
            cursor.close()

    def append_stream(self, table: str, batches: pa.RecordBatchReader) -> None:
        # DuckDB scans a registered reader batch by batch: the stream is never materialized.
        import pyarrow as pa  # here, not at import: read-only commands never load Arrow

        failure: list[BaseException] = []

        def watched() -> Iterator[pa.RecordBatch]:
            try:
                yield from batches
            except BaseException as exc:  # raised as itself below, not as DuckDB's text of it
                failure.append(exc)
                raise

        self._con.register("_directmail_stream", pa.RecordBatchReader.from_batches(batches.schema, watched()))
        columns = ", ".join(self.dialect.quote(field.name) for field in batches.schema)
        try:
            self._con.execute(f"insert into {table} ({columns}) select {columns} from _directmail_stream")
        except duckdb.Error:
            if failure:
                raise failure[0] from None
            raise
        finally:
            with suppress(duckdb.Error):  # in an aborted transaction; the next register replaces it
                self._con.unregister("_directmail_stream")

    def relation_exists(self, relation: str) -> bool:
        try:
            self._con.execute(f"select 1 from {relation} limit 0")
        except duckdb.CatalogException:
            return False
        return True

    def refresh_statistics(self, relation: str) -> None:
        return None  # DuckDB keeps a table's statistics as it writes it

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
