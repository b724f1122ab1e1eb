"""Contract 3's bytes for one line or one batch of rows: minimal quoting, separator, line ending, encoding.

Rows arrive as Arrow string columns (the warehouse already formatted values and turned NULL into '').
Quoting, joining and line endings are vectorised Arrow compute kernels, so no Python code runs per row;
the only per-batch Python step is transcoding when the encoding is not UTF-8.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BOM = b"\xef\xbb\xbf"


class LineEncoder:
    def __init__(self, separator: str, newline: str, encoding: str):
        self.separator = separator
        self.newline = newline
        self.encoding = encoding
        self._needs_quotes = re.compile(f'[{re.escape(separator)}"\r\n]')
        self._needs_quotes_arrow = f'[{re.escape(separator)}"\\r\\n]'

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
        return self._encode(self.separator.join(self.field(v) for v in values) + self.newline)

    def note(self, text: str) -> bytes:
        """A header or footer note, written as is (a single line)."""
        return self._encode(text + self.newline)

    def rows(self, columns: list[pa.Array]) -> bytes:
        """Every row of a batch, each line ended, as the file's bytes."""
        if not columns or len(columns[0]) == 0:
            return b""
        fields = [self._quote(column) for column in columns]
        lines = pc.binary_join_element_wise(*fields, self.separator) if len(fields) > 1 else fields[0]
        ended = pc.binary_join_element_wise(lines, "", self.newline)
        data = _value_bytes(ended)
        if self.encoding.startswith("utf-8"):
            return data
        return data.decode("utf-8").encode(self.encoding)

    def _quote(self, column: pa.Array) -> pa.Array:
        column = column.cast(pa.string()) if column.type != pa.string() else column
        needs = pc.match_substring_regex(column, self._needs_quotes_arrow)
        quoted = pc.binary_join_element_wise("", pc.replace_substring(column, '"', '""'), "", '"')
        return pc.if_else(needs, quoted, column)

    def _encode(self, text: str) -> bytes:
        return text.encode("utf-8" if self.encoding == "utf-8-sig" else self.encoding)


def _value_bytes(array: pa.Array) -> bytes:
    """The concatenated values of a string array without a Python object per value."""
    if isinstance(array, pa.ChunkedArray):
        return b"".join(_value_bytes(chunk) for chunk in array.chunks)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    start, end = offsets[array.offset], offsets[array.offset + len(array)]
    return array.buffers()[2][start:end].to_pybytes()
