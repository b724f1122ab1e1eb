"""Contract 3's bytes: minimal quoting, separator, line ending, encoding.

Rows arrive as finished lines from the warehouse (the dialect's `text_line` quotes, joins and ends them in
parallel SQL), so no Python code runs per row: a batch's bytes are its string buffer, transcoded only when
the encoding is not UTF-8. The header row and notes are written here, with the same quoting rule.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from directmail.warehouse import SqlDialect

BOM = b"\xef\xbb\xbf"
# A spreadsheet runs a cell starting with one of these as a formula (escape_formulas).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_escaped(text: str) -> str:
    """`text` with a leading ' if a spreadsheet would run it as a formula (contract 2, escape_formulas)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class LineEncoder:
    def __init__(self, separator: str, newline: str, encoding: str, escape_formulas: bool = False):
        self.separator = separator
        self.newline = newline
        self.encoding = encoding
        # The header row and the notes a spreadsheet would run get their ' here; values get theirs in
        # the warehouse (extract.plan_extract).
        self.escape_formulas = escape_formulas
        self._needs_quotes = re.compile(f'[{re.escape(separator)}"\r\n]')

    @property
    def file_prefix(self) -> bytes:
        """Bytes every file starts with (the BOM of utf-8-sig)."""
        return BOM if self.encoding == "utf-8-sig" else b""

    def field(self, value: str) -> str:
        if self._needs_quotes.search(value):
            return '"' + value.replace('"', '""') + '"'
        return value

    def line(self, values: list[str]) -> bytes:
        """One line from Python strings: the header row of labels."""
        if self.escape_formulas:
            values = [formula_escaped(v) for v in values]
        return self._encode(self.separator.join(self.field(v) for v in values) + self.newline)

    def header(self, labels: list[str]) -> bytes:
        """The bytes between the header note and the first data row: the row of labels."""
        return self.line(labels)

    def line_sql(self, dialect: SqlDialect, fields: list[str]) -> str:
        """The SQL expression of a finished line from the written columns' text expressions."""
        return dialect.text_line(fields, self.separator, self.newline)

    def note(self, text: str) -> bytes:
        """A header or footer note, written as is (a single line), with its ' under escape_formulas."""
        return self._encode((formula_escaped(text) if self.escape_formulas else text) + self.newline)

    def lines(self, lines: pa.Array) -> bytes | memoryview:
        """The bytes of finished lines (the warehouse quoted, joined and ended them: text_line); in UTF-8,
        a view of Arrow's own buffer, not a copy."""
        if len(lines) == 0:
            return b""
        data = _value_bytes(lines)
        if self.encoding.startswith("utf-8"):
            return data
        return bytes(data).decode("utf-8").encode(self.encoding)

    def _encode(self, text: str) -> bytes:
        return text.encode("utf-8" if self.encoding == "utf-8-sig" else self.encoding)


def _value_bytes(array: pa.Array) -> bytes | memoryview:
    """The concatenated values of a string array without a Python object per value."""
    if isinstance(array, pa.ChunkedArray):
        return b"".join(_value_bytes(chunk) for chunk in array.chunks)
    offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=offset_type)
    start, end = offsets[array.offset], offsets[array.offset + len(array)]
    return memoryview(array.buffers()[2])[start:end]
