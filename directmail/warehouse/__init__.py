"""The one interface through which the runner touches the warehouse.

Read a relation as a stream of Arrow record batches, run a statement, write the history tables. DuckDB,
PostgreSQL (ADBC) and Spark (a session shared with dbt) implement it, chosen by the dbt target's adapter
type. Nothing else in the library imports a database driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from directmail.builder import TargetInfo
from directmail.errors import ConfigError, DirectMailError, Finding

if TYPE_CHECKING:  # not imported by commands that only read the history (start-up time)
    import pyarrow as pa

    from directmail.valueformats import ValueFormats


class WarehouseBusy(DirectMailError):
    """A read-only open found the warehouse held by a writer (DuckDB admits one writer process)."""


class SqlDialect(Protocol):
    text_type: str  # the type a cast to text names (`varchar`; Spark's `string`)

    def quote(self, identifier: str) -> str: ...

    def literal(self, value: str) -> str: ...

    def as_text(self, expression: str, type_name: str, formats: ValueFormats = ...) -> str:
        """An expression writing `expression` as contract 3 wants (NULL → ''): dates, timestamps and
        decimal or float numbers as `formats` says (by default ISO dates and timestamps, '.' decimals)."""
        ...

    def holdout_bucket(self, key_expression: str) -> str:
        """A stable integer in [0, 10000) from a text key: the same profile is always in or out."""
        ...

    def days_before(self, moment: str, days: int) -> str:
        """A timestamp expression: `days` days before the ISO timestamp `moment` (UTC)."""
        ...

    def text_key(self, expressions: list[str]) -> str:
        """A hash of the values, ignoring case and surrounding spaces (a fallback household key)."""
        ...

    def row_hash(self, expressions: list[str]) -> str:
        """A 64-bit hash of the values together: equal rows hash alike (different ones may collide)."""
        ...

    def contains(self, field: str, needle: str) -> str:
        """Whether the text `field` holds the text `needle` (both SQL expressions)."""
        ...

    def char_length(self, expression: str) -> str:
        """The length of a text in characters (code points), as Python's len() counts."""
        ...

    def full_match(self, expression: str, pattern: str) -> str:
        """Whether the whole text matches the regex `pattern` (the syntax Python and the warehouse share:
        literals, classes, repetition)."""
        ...

    def matches_ranges(self, expression: str, ranges: tuple[tuple[int, int], ...]) -> str:
        """Whether every character of the text is in one of the code point ranges (first, last)."""
        ...

    def text_line(self, fields: list[str], separator: str, newline: str) -> str:
        """One line of contract 3 from text expressions: a field is quoted only when it holds the
        separator, a double quote or a line break (its quotes doubled); the newline ends the line."""
        ...

    def fixed_width_line(
        self, fields: list[str], widths: list[int], right_aligned: list[bool], newline: str
    ) -> str:
        """One fixed-width line from text expressions: each padded with spaces to its width in
        characters (on the left when right-aligned), never cut; the newline ends the line."""
        ...

    def text_literal(self, value: str) -> str:
        """A string literal for any text, control characters included (the SQL stays one line)."""
        ...

    def insertion_position(self) -> str:
        """A row's 0-based position in a table written by `create table … as select … order by`."""
        ...

    def position_column(self, order: str) -> str:
        """A select-list item (with its leading comma) that records the position `order` gives each row,
        for a warehouse whose tables do not keep insertion order; empty where they do."""
        ...

    def position_order(self) -> str:
        """The `order by` that reads such a table in its written order (empty where rows keep it)."""
        ...

    def code_point_order(self, expression: str) -> str:
        """A text expression compared (order by, min, max) by code point, whatever the database's
        collation: the same file order on every warehouse."""
        ...

    def temporary_relation(self, name: str) -> str:
        """The qualified name of a temporary table (it lives as long as the connection)."""
        ...

    def create_temporary_table(self, relation: str, select: str) -> str:
        """The statement creating that table from a query (a scratch table where there is none)."""
        ...

    def create_empty_temporary_table(self, relation: str, columns: Sequence[tuple[str, str]]) -> str:
        """The statement creating that table empty with these (name, type) columns, declared: a table to
        fill and join in one transaction (DuckDB 2.0.0 joins one made `as select … limit 0` wrong)."""
        ...

    def cte_hint(self, materialized: bool) -> str:
        """What follows `name as` in a CTE to ask it (not) materialized; empty where there is no hint."""
        ...


class Warehouse(Protocol):
    @property
    def dialect(self) -> SqlDialect:
        """The SQL this engine speaks (read-only: an engine's attribute of its own dialect class)."""
        ...

    # Whether transaction() makes its statements all or nothing. Spark's parquet tables have no
    # transactions: the history is then written append-only, in an order a crash cannot corrupt.
    transactional: bool

    def stream(self, sql: str, batch_size: int = 65_536) -> pa.RecordBatchReader: ...

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table: ...

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """A small result as Python rows (column → value), without Arrow: for the history reads of side
        commands, whose start-up time Arrow's import would double."""
        ...

    def execute(self, sql: str, params: list[Any] | None = None) -> None: ...

    def describe(self, sql: str) -> list[tuple[str, str]]:
        """(column name, type name) of a query, duplicates kept, without running it."""
        ...

    def declared_columns(self, sql: str) -> list[str] | None:
        """Output names as the query text declares them (duplicates kept), or None if unknown."""
        ...

    def append(self, table: str, rows: pa.Table) -> None: ...

    def side_stream(self, sql: str, batch_size: int = 65_536) -> AbstractContextManager[pa.RecordBatchReader]:
        """Stream a query on a connection of its own, so that this one can write (in a transaction) while
        the stream is read; the stream sees what was committed before it started."""
        ...

    def append_stream(self, table: str, batches: pa.RecordBatchReader) -> None:
        """Insert every batch of the stream (by column name), holding one batch at a time."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Statements inside commit together, or roll back on an exception or a crash."""
        ...

    def relation_exists(self, relation: str) -> bool: ...

    def refresh_statistics(self, relation: str) -> None:
        """Let the planner know a table just built (PostgreSQL plans a fresh table blind until its
        autovacuum analyzes it); a no-op where statistics are always current."""
        ...

    def close(self) -> None: ...


def query_labels(warehouse: Warehouse, sql: str) -> list[str]:
    """The column labels a model's query produces, duplicates kept where the query text shows them."""
    return warehouse.declared_columns(sql) or [name for name, _ in warehouse.describe(sql)]


def warehouse_file(target: TargetInfo, project_dir: Path) -> Path | None:
    """The DuckDB database file of the target, or None (in memory, or another engine)."""
    if target.adapter_type != "duckdb" or target.duckdb_path in ("", ":memory:"):
        return None
    path = Path(target.duckdb_path)
    return path if path.is_absolute() else project_dir / path


def open_warehouse(target: TargetInfo, project_dir: Path, read_only: bool = False) -> Warehouse:
    """`read_only` for commands that only read the history: no file is created, no writer is blocked
    for longer than the read, and a warehouse held by a writer raises WarehouseBusy."""
    if target.adapter_type == "duckdb":
        from directmail.warehouse.duckdb_warehouse import DuckDBWarehouse

        path = warehouse_file(target, project_dir) or Path(":memory:")
        return DuckDBWarehouse(path, getattr(target.credentials, "settings", None), read_only=read_only)
    if target.adapter_type == "postgres":
        from directmail.warehouse.postgres_warehouse import PostgresWarehouse

        return PostgresWarehouse(target)
    if target.adapter_type == "spark":
        from directmail.warehouse.spark_warehouse import SparkWarehouse

        return SparkWarehouse(target, project_dir)
    reason = f"adapter type '{target.adapter_type}' is not supported (supported: duckdb, postgres, spark)"
    raise ConfigError([Finding("profiles.yml", f"target {target.name}", reason)])
