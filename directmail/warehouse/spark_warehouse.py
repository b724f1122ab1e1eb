"""Spark in the runner's own process: the session dbt-spark's `session` method uses, the same bytes as DuckDB.

One Spark session per process, shared with dbt: dbt-spark's session method calls
`SparkSession.builder.enableHiveSupport()…getOrCreate()` with the target's `server_side_parameters`, and
this module builds it the same way, so whichever starts first, both use it (the embedded Derby metastore
admits one process). The extract is never collected into the driver: Spark writes the sorted result as
parquet part files, which are read back in part order, batch by batch, and deleted. Spark's parquet tables
have no transactions (`transactional = False`): the history is written append-only (directmail/history.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from directmail.builder import TargetInfo
from directmail.errors import ConfigError, Finding
from directmail.valueformats import ISO, ValueFormats, spark_pattern
from directmail.warehouse.sqltext import CommonSql, PositionedRows, class_range

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

# Where the runner's own scratch tables live (the extract's staging table, a return file's rows).
SCRATCH_SCHEMA = "directmail_scratch"
_PART = re.compile(r"^part-(\d+)")
_CLEARED_SPOOLS: set[str] = set()  # spool folders this process has cleared of what a crash left
# Spark's type names (simpleString) in the vocabulary the runner speaks (DuckDB's).
TYPE_NAMES = {
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP",
    "double": "DOUBLE",
    "float": "FLOAT",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "boolean": "BOOLEAN",
}


class SparkDialect(PositionedRows, CommonSql):
    text_type = "string"  # Spark's `varchar` needs a length

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    def literal(self, value: str) -> str:
        # A backslash escapes in Spark's string literals: doubled, and the quote escaped by one.
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def full_match(self, expression: str, pattern: str) -> str:
        # Java's regex: `rlike` finds a match anywhere, so anchored; `\z` is the very end (`$` would
        # also match before a final line break).
        anchored = "^(?:" + pattern + ")\\z"
        return f"({expression} rlike {self.literal(anchored)})"

    def matches_ranges(self, expression: str, ranges: tuple[tuple[int, int], ...]) -> str:
        body = "".join(class_range(a, b, "\\x{{{:X}}}") for a, b in ranges)  # Java: \x{hex}, any plane
        return self.full_match(expression, f"[{body}]*")

    def contains(self, field: str, needle: str) -> str:
        return f"instr({field}, {needle}) > 0"

    def as_text(self, expression: str, type_name: str, formats: ValueFormats = ISO) -> str:
        kind = type_name.upper()
        timestamp = formats.timestamp_format
        if kind == "VARCHAR":
            text = expression
        elif kind == "DATE":
            text = self._date_format(expression, formats.date_format)
        elif kind.startswith("TIMESTAMP"):  # in the session's time zone, which the runner sets to UTC
            text = (
                _iso_timestamp(expression) if timestamp is None else self._date_format(expression, timestamp)
            )
        elif kind in ("DOUBLE", "FLOAT"):
            text = self.decimal_text(
                _float_text(expression, 10**16 if kind == "DOUBLE" else 2**24), kind, formats
            )
        else:  # integers, decimals (their scale kept, in plain digits), booleans (true/false)
            text = self.decimal_text(f"cast({expression} as string)", kind, formats)
        return f"coalesce({text}, '')"

    def _date_format(self, expression: str, pattern: str) -> str:
        return f"date_format({expression}, {self.literal(spark_pattern(pattern))})"

    def holdout_bucket(self, key_expression: str) -> str:
        # DuckDB's bucket exactly: the first 8 hex digits of the md5, as an unsigned number, modulo 10000.
        return f"cast(cast(conv(left(md5({key_expression}), 8), 16, 10) as bigint) % 10000 as int)"

    def days_before(self, moment: str, days: int) -> str:
        return f"(cast({self.literal(moment)} as timestamp) - make_dt_interval({int(days)}))"

    def text_key(self, expressions: list[str]) -> str:
        parts = ", ".join(f"lower(trim(coalesce(cast({e} as string), '')))" for e in expressions)
        return f"md5(concat_ws('|', {parts}))"

    def row_hash(self, expressions: list[str]) -> str:
        return f"xxhash64({', '.join(expressions)})"

    def code_point_order(self, expression: str) -> str:
        # Spark's binary collation compares UTF-8 bytes, which order as code points; a column with
        # another collation (Spark 4's UTF8_LCASE, ICU) is compared by its bytes all the same.
        return f"(({expression}) collate UTF8_BINARY)"

    def temporary_relation(self, name: str) -> str:
        return f"{SCRATCH_SCHEMA}.{self.quote(name)}"

    def create_temporary_table(self, relation: str, select: str) -> str:
        return f"create table {relation} using parquet as {select}"

    def cte_hint(self, materialized: bool) -> str:
        return ""  # Spark plans each CTE itself


def _iso_timestamp(expression: str) -> str:
    """ISO 8601 with a 'T'; fractional seconds (6 digits) only when there are some."""
    fraction = (
        f"case when unix_micros(cast({expression} as timestamp)) % 1000000 = 0 then '' "
        f"else date_format({expression}, '.SSSSSS') end"
    )
    return f"date_format({expression}, \"yyyy-MM-dd'T'HH:mm:ss\") || {fraction}"


def _float_text(expression: str, plain_below: int) -> str:
    """A whole float below `plain_below` as DuckDB writes it (plain digits and '.0'), nan, inf, -inf;
    any other float as Spark's text of it (Java's, with an 'E' exponent: cast to decimal in the model
    for DuckDB's bytes)."""
    x = expression
    return (
        f"case when isnan({x}) then 'nan' when {x} = double('inf') then 'inf' "
        f"when {x} = double('-inf') then '-inf' "
        f"when {x} % 1 = 0 and abs({x}) < {int(plain_below)} "
        f"then cast(cast({x} as bigint) as string) || '.0' "
        f"else cast({x} as string) end"
    )


def session_parameters(target: TargetInfo) -> dict[str, str]:
    """The target's `server_side_parameters`, as dbt-spark applies them."""
    return {str(k): str(v) for k, v in (target.credentials.connection.get("parameters") or {}).items()}


def spark_session(target: TargetInfo, project_dir: Path) -> SparkSession:
    """The process's Spark session, created as dbt-spark's session method creates it (or the one it made).

    Started from the project folder, so that relative paths in the parameters (the warehouse folder, the
    Derby metastore) mean what they mean to dbt, which runs there."""
    method = target.credentials.connection.get("method")
    if method != "session":
        reason = (
            f"the runner reaches Spark through dbt-spark's `method: session` only (this target: {method})"
        )
        raise ConfigError([Finding("profiles.yml", f"target {target.name}", reason)])
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # a local session: no host name lookup
    for name in ("py4j", "SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # errors reach the user as directmail's
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    builder = builder.config("spark.ui.showConsoleProgress", "false")  # no progress bars in the output
    for name, value in session_parameters(target).items():
        builder = builder.config(name, value)
    with contextlib.chdir(project_dir):
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    # The file's timestamps are written in UTC wall-clock time, as DuckDB's naive timestamps are.
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session


def _spark_type_name(data_type: Any) -> str:
    name = data_type.simpleString()
    if name.startswith("decimal"):
        return name.upper()
    return TYPE_NAMES.get(name, name.upper())


class SparkWarehouse:
    transactional = False  # parquet tables: one statement at a time, no rollback

    def __init__(self, target: TargetInfo, project_dir: Path):
        self.target = target
        self.dialect = SparkDialect()
        self._session = spark_session(target, project_dir)
        self._spool_root = project_dir / ".directmail" / "spark-spool"
        try:
            self._session.sql(f"create database if not exists {SCRATCH_SCHEMA}")
        except Exception as error:  # the metastore is reached here first
            text = str(error)
            if "Another instance of Derby" not in text and "SessionHiveMetaStoreClient" not in text:
                raise
            from directmail.warehouse import WarehouseBusy

            raise WarehouseBusy(
                f"cannot open the Spark metastore of target {target.name}: most likely another process "
                "has it open (an embedded Derby admits one at a time: a run or dbt in progress?); try "
                "again when it ends"
            ) from None
        self._clear_spools_once()  # the metastore is this process's: no other process is streaming

    def _clear_spools_once(self) -> None:
        """Spools a crashed process left: cleared at this process's first open of the project, when no
        stream of its own can be reading (and another process's cannot: Derby admits one process)."""
        root = str(self._spool_root.resolve())
        if root not in _CLEARED_SPOOLS:
            _CLEARED_SPOOLS.add(root)
            shutil.rmtree(self._spool_root, ignore_errors=True)

    def _sql(self, sql: str, params: list[Any] | None = None) -> DataFrame:
        return self._session.sql(sql, args=list(params)) if params else self._session.sql(sql)

    @contextlib.contextmanager
    def _spooled(self) -> Iterator[Path]:
        self._spool_root.mkdir(parents=True, exist_ok=True)
        directory = Path(tempfile.mkdtemp(prefix="spool-", dir=self._spool_root))
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def stream(self, sql: str, batch_size: int = 65_536) -> pa.RecordBatchReader:
        """Spark writes the (sorted) result as parquet parts, read back in part order and then deleted:
        the driver holds one batch at a time, whatever the size of the result."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pyspark.sql.pandas.types import to_arrow_schema

        spool = self._spooled()
        directory = spool.__enter__()
        try:
            frame = self._sql(sql)
            frame.write.mode("overwrite").parquet((directory / "parts").as_uri())  # on this machine
            parts = sorted(
                (p for p in (directory / "parts").iterdir() if _PART.match(p.name)),
                key=lambda p: int(_PART.match(p.name).group(1)),  # type: ignore[union-attr]
            )
            schema = (
                pq.read_schema(parts[0])
                if parts
                else to_arrow_schema(frame.schema, timezone="UTC", prefers_large_types=False)
            )
        except BaseException:
            spool.__exit__(None, None, None)
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for part in parts:
                    with pq.ParquetFile(part) as parquet:
                        for batch in parquet.iter_batches(batch_size=batch_size):
                            yield batch.cast(schema) if batch.schema != schema else batch
            finally:
                spool.__exit__(None, None, None)

        return pa.RecordBatchReader.from_batches(schema, batches())

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        return self._sql(sql, params).toArrow()  # small results only (counts, a run's rows)

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        return [row.asDict() for row in self._sql(sql, params).collect()]

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        self._sql(sql, params)  # statements run when submitted

    def describe(self, sql: str) -> list[tuple[str, str]]:
        return [(f.name, _spark_type_name(f.dataType)) for f in self._sql(sql).schema.fields]

    def declared_columns(self, sql: str) -> list[str] | None:
        return None  # Spark keeps duplicate labels in a result: describe() shows them

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """No transactions on Spark's parquet tables: statements apply as they run. Writers that need
        all-or-nothing check `transactional` and write so that a partial write is never visible."""
        yield

    def _insert(self, table: str, frame: DataFrame, one_file: bool) -> None:
        """Insert by column name, cast to the table's types (absent columns null). `one_file`: one
        partition, so one file is renamed into the table: the append is all or nothing."""
        from pyspark.sql import functions as F

        present = set(frame.columns)
        columns = [
            (F.col(self.dialect.quote(f.name)) if f.name in present else F.lit(None))
            .cast(f.dataType)
            .alias(f.name)
            for f in self._session.table(table).schema.fields
        ]
        selected = frame.select(*columns)
        (selected.coalesce(1) if one_file else selected).write.insertInto(table)

    def append(self, table: str, rows: pa.Table) -> None:
        import pyarrow as pa

        keep = [
            name
            for name, field in zip(rows.column_names, rows.schema, strict=True)
            if field.type != pa.null()
        ]
        data = rows.select(keep)
        frame = (
            self._session.createDataFrame(data) if data.num_columns else self._session.range(rows.num_rows)
        )
        self._insert(table, frame, one_file=True)

    def append_stream(self, table: str, batches: pa.RecordBatchReader) -> None:
        """The stream spooled to a local parquet file (one batch in memory at a time), then inserted."""
        import pyarrow.parquet as pq

        with self._spooled() as directory:
            path = directory / "rows.parquet"
            with pq.ParquetWriter(path, batches.schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
            self._insert(table, self._session.read.parquet(str(path)), one_file=False)

    @contextlib.contextmanager
    def side_stream(self, sql: str, batch_size: int = 65_536) -> Iterator[pa.RecordBatchReader]:
        # stream() has Spark write the whole result before the first batch is read: what is written while
        # it is read is not in it.
        yield self.stream(sql, batch_size)

    def relation_exists(self, relation: str) -> bool:
        return bool(self._session.catalog.tableExists(relation))

    def refresh_statistics(self, relation: str) -> None:
        return None  # Spark plans from the files themselves

    def close(self) -> None:
        return None  # the session stays for dbt and the next open: a JVM start costs seconds

    def __enter__(self) -> SparkWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
