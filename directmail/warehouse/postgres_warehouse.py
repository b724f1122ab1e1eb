"""PostgreSQL through ADBC: Arrow batches in and out, the same SQL shapes and the same bytes as DuckDB.

The connection comes from the dbt target (host, port, user, dbname, sslmode; the password from the
profile or libpq's PGPASSWORD, never logged). Statements run in autocommit; `transaction()` wraps its
statements in one `begin … commit`. Strings compare by code point (`collate "C"`) wherever order matters,
whatever the database's collation; a staging table records each row's position in a column, since
PostgreSQL does not keep insertion order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import adbc_driver_postgresql.dbapi as adbc

from directmail.builder import TargetInfo
from directmail.errors import DirectMailError
from directmail.valueformats import ISO, ValueFormats, postgres_template
from directmail.warehouse.sqltext import CommonSql, PositionedRows

if TYPE_CHECKING:
    import pyarrow as pa

# Rows per fetched batch are bounded by bytes (the driver's hint), not by a row count.
BATCH_SIZE_HINT_BYTES = 4 * 1024 * 1024
# PostgreSQL's type names (ADBC's `POSTGRESQL:type`) in the vocabulary the runner speaks (DuckDB's).
TYPE_NAMES = {
    "varchar": "VARCHAR",
    "text": "VARCHAR",
    "bpchar": "VARCHAR",
    "name": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMP WITH TIME ZONE",
    "numeric": "NUMERIC",
    "float8": "DOUBLE",
    "float4": "FLOAT",
    "int2": "SMALLINT",
    "int4": "INTEGER",
    "int8": "BIGINT",
    "bool": "BOOLEAN",
}
# The advisory lock's key (one per database: PostgreSQL scopes advisory locks to the current database).
RUN_LOCK_KEY = int.from_bytes(hashlib.sha256(b"directmail:warehouse writer").digest()[:8], "big", signed=True)
_PARAMETER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")


class PostgresDialect(PositionedRows, CommonSql):
    def as_text(self, expression: str, type_name: str, formats: ValueFormats = ISO) -> str:
        kind = type_name.upper()
        timestamp = formats.timestamp_format
        if kind == "VARCHAR":
            text = expression
        elif kind == "DATE":
            text = self._to_char(f"cast({expression} as timestamp)", formats.date_format)
        elif kind == "TIMESTAMP WITH TIME ZONE":
            utc = f"({expression} at time zone 'UTC')"
            text = _iso_timestamp(utc, suffix="Z") if timestamp is None else self._to_char(utc, timestamp)
        elif kind.startswith("TIMESTAMP"):
            text = _iso_timestamp(expression) if timestamp is None else self._to_char(expression, timestamp)
        elif kind in ("DOUBLE", "FLOAT"):  # whole floats in plain digits while exact (2^24 for FLOAT)
            text = self.decimal_text(
                _float_text(expression, 10**16 if kind == "DOUBLE" else 2**24), kind, formats
            )
        else:  # numbers ('.' decimals, numeric keeps its scale as DuckDB's decimal does), booleans
            text = self.decimal_text(f"cast({expression} as varchar)", kind, formats)
        return f"coalesce({text}, '')"

    def _to_char(self, expression: str, pattern: str) -> str:
        return f"to_char({expression}, {self.literal(postgres_template(pattern))})"

    def holdout_bucket(self, key_expression: str) -> str:
        # DuckDB's bucket exactly: the first 8 hex digits of the md5, as an unsigned number, modulo 10000.
        return f"cast(cast(('x' || left(md5({key_expression}), 8)) as bit(32)) as bigint) % 10000"

    def days_before(self, moment: str, days: int) -> str:
        return f"(cast({self.literal(moment)} as timestamp) - interval '1 day' * {int(days)})"

    def text_key(self, expressions: list[str]) -> str:
        # lower() under an ICU collation folds every letter, as DuckDB's does (the C collation folds ASCII).
        parts = ", ".join(
            f"lower(trim(coalesce(cast({e} as varchar), '')) collate \"und-x-icu\")" for e in expressions
        )
        return f"md5(concat_ws('|', {parts}))"

    def row_hash(self, expressions: list[str]) -> str:
        return f"hashtextextended(cast(row({', '.join(expressions)}) as text), 0)"

    def code_point_order(self, expression: str) -> str:
        return f'({expression}) collate "C"'

    def temporary_relation(self, name: str) -> str:
        return f"pg_temp.{self.quote(name)}"


def _iso_timestamp(expression: str, suffix: str = "") -> str:
    """ISO 8601 with a 'T'; fractional seconds (6 digits) only when there are some."""
    fraction = (
        f"case when extract(microseconds from {expression}) % 1000000 = 0 then '' "
        f"else to_char({expression}, '.US') end"
    )
    return f"to_char({expression}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || {fraction} || '{suffix}'"


def _float_text(expression: str, plain_below: int) -> str:
    """A float as DuckDB writes it: the shortest text that reads back (as PostgreSQL's), but a whole
    number below `plain_below` in plain digits with '.0', and nan, inf, -inf."""
    x = expression
    return (
        f"case when {x} = 'NaN' then 'nan' when {x} = 'Infinity' then 'inf' "
        f"when {x} = '-Infinity' then '-inf' "
        f"when {x} = trunc({x}) and abs({x}) < {int(plain_below)} "
        f"then cast(cast({x} as bigint) as varchar) || '.0' "
        f"else cast({x} as varchar) end"
    )


def _positional(sql: str) -> str:
    """The runner's `?` placeholders as PostgreSQL's `$1, $2, …` (never inside quotes)."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    return _PARAMETER.sub(number, sql)


def server_location(target: TargetInfo) -> str:
    """postgresql://user@host:port/dbname: where the target points, never the password."""
    c = target.credentials.connection
    return f"postgresql://{c.get('user', '')}@{c.get('host', '')}:{c.get('port', '')}/{c.get('dbname', '')}"


def _uri(target: TargetInfo) -> str:
    c = target.credentials.connection
    password = target.credentials.password
    login = quote(str(c.get("user", "")), safe="") + (":" + quote(password, safe="") if password else "")
    options = urlencode({"sslmode": c["sslmode"]}) if c.get("sslmode") else ""
    host = quote(str(c.get("host", "")), safe="")
    database = quote(str(c.get("dbname", "")), safe="")
    return f"postgresql://{login}@{host}:{int(c.get('port') or 5432)}/{database}" + (
        f"?{options}" if options else ""
    )


class PostgresWarehouse:
    transactional = True

    def __init__(self, target: TargetInfo):
        self.target = target
        self.dialect = PostgresDialect()
        self._con = self._connect()

    def _connect(self) -> Any:
        try:
            return adbc.connect(_uri(self.target), autocommit=True)
        except adbc.Error as error:
            raise DirectMailError(
                f"cannot connect to {server_location(self.target)} (target {self.target.name}): "
                f"{self._scrubbed(error)}"
            ) from None

    def _scrubbed(self, error: BaseException) -> str:
        text = str(error)
        password = self.target.credentials.password
        return text.replace(password, "***").replace(quote(password, safe=""), "***") if password else text

    def _cursor(self, con: Any = None) -> Any:
        cursor = (con or self._con).cursor()
        cursor.adbc_statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_SIZE_HINT_BYTES)}
        )
        return cursor

    def stream(self, sql: str, batch_size: int = 65_536) -> pa.RecordBatchReader:
        cursor = self._cursor()
        cursor.execute(sql)
        return _numeric_as_text(cursor.fetch_record_batch(), cursor)

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._cursor() as cursor:
            cursor.execute(_positional(sql), parameters=params or None)
            return _numeric_as_text(cursor.fetch_record_batch()).read_all()

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self._con.cursor() as cursor:
            cursor.execute(_positional(sql), parameters=params or None)
            names = [column[0] for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        with self._con.cursor() as cursor:
            cursor.execute(_positional(sql), parameters=params or None)

    def describe(self, sql: str) -> list[tuple[str, str]]:
        with self._con.cursor() as cursor:
            schema = cursor.adbc_execute_schema(sql)
        described = []
        for field in schema:
            pg_type = (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()
            described.append((field.name, TYPE_NAMES.get(pg_type, pg_type.upper() or str(field.type))))
        return described

    def declared_columns(self, sql: str) -> list[str] | None:
        return None  # PostgreSQL keeps duplicate labels in a result: describe() shows them

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all (a lost connection rolls them back)."""
        self.execute("begin")
        try:
            yield
        except BaseException:
            self.execute("rollback")
            raise
        self.execute("commit")

    def append(self, table: str, rows: pa.Table) -> None:
        self._ingest(table, rows.cast(self._schema_for(table, rows.column_names)))

    def append_stream(self, table: str, batches: pa.RecordBatchReader) -> None:
        import pyarrow as pa

        schema = self._schema_for(table, batches.schema.names)
        cast = pa.RecordBatchReader.from_batches(schema, (batch.cast(schema) for batch in batches))
        self._ingest(table, cast)

    def _schema_for(self, table: str, names: list[str]) -> pa.Schema:
        """The table's own Arrow types for these columns: COPY needs them exact (int4, not int8)."""
        import pyarrow as pa

        with self._con.cursor() as cursor:
            types = {f.name: f.type for f in cursor.adbc_execute_schema(f"select * from {table} limit 0")}
        return pa.schema([pa.field(name, types[name]) for name in names])

    def _ingest(self, table: str, data: Any) -> None:
        schema, _, name = table.rpartition(".")
        with self._con.cursor() as cursor:
            if schema == "pg_temp":
                cursor.adbc_ingest(name.strip('"'), data, mode="append", temporary=True)
            else:
                cursor.adbc_ingest(name.strip('"'), data, mode="append", db_schema_name=schema or None)

    @contextmanager
    def side_stream(self, sql: str, batch_size: int = 65_536) -> Iterator[pa.RecordBatchReader]:
        con = self._connect()  # a connection of its own: it sees what was committed before it started
        try:
            cursor = self._cursor(con)
            cursor.execute(sql)
            yield _numeric_as_text(cursor.fetch_record_batch(), cursor)
        finally:
            con.close()

    def relation_exists(self, relation: str) -> bool:
        # to_regclass, not a failing select: a failed statement would abort an open transaction.
        rows = self.rows("select to_regclass(?) is not null as found", [relation])
        return bool(rows[0]["found"])

    def refresh_statistics(self, relation: str) -> None:
        self.execute(f"analyze {relation}")

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> PostgresWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def advisory_lock(target: TargetInfo, waiting: Callable[[str], None]) -> Iterator[None]:
    """Held on a connection of its own for as long as the writer works: runners on other machines wait.
    The server releases it when that connection ends, so a crashed runner never blocks the next."""
    warehouse = PostgresWarehouse(target)
    try:
        [row] = warehouse.rows(f"select pg_try_advisory_lock({RUN_LOCK_KEY}) as locked")
        if not row["locked"]:
            waiting(f"another runner holds {server_location(target)}; waiting for it to finish")
            warehouse.execute(f"select pg_advisory_lock({RUN_LOCK_KEY})")
        yield
    finally:
        warehouse.close()


def _numeric_as_text(reader: pa.RecordBatchReader, cursor: Any = None) -> pa.RecordBatchReader:
    """ADBC returns NUMERIC as an opaque extension type over strings: hand over its plain strings.

    `cursor`: the cursor the reader reads from, held until the last batch (then closed); the driver
    closes the stream when its cursor is collected."""
    import pyarrow as pa

    opaque = {i for i, f in enumerate(reader.schema) if isinstance(f.type, pa.ExtensionType)}
    fields = [pa.field(f.name, pa.string()) if i in opaque else f for i, f in enumerate(reader.schema)]
    schema = pa.schema(fields)

    def plain() -> Iterator[pa.RecordBatch]:
        try:
            for batch in reader:
                if not opaque:
                    yield batch
                    continue
                columns = [
                    c.storage if i in opaque else c  # type: ignore[attr-defined]
                    for i, c in enumerate(batch.columns)
                ]
                yield pa.RecordBatch.from_arrays(columns, schema=schema)
        finally:
            if cursor is not None:
                cursor.close()

    return pa.RecordBatchReader.from_batches(schema, plain())
