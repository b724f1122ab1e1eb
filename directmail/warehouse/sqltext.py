"""The SQL the dialects write alike: identifiers, literals, and the lines of contract 3 built in the
warehouse (quoted-when-needed fields, fixed-width padding), so that every engine gives the same bytes."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from directmail.valueformats import ValueFormats, is_fractional


class CommonSql:
    """Shared by the dialects; a dialect overrides `contains` where it has a faster spelling."""

    text_type = "varchar"

    def create_temporary_table(self, relation: str, select: str) -> str:
        return f"create temporary table {relation} as {select}"

    def create_empty_temporary_table(self, relation: str, columns: Sequence[tuple[str, str]]) -> str:
        """That table empty, its columns declared: not `as select … limit 0`, which DuckDB 2.0.0 joins
        wrong once filled in the same transaction. Spelled as the dialect's create_temporary_table (Spark's
        `using parquet` follows the column list)."""
        declared = ", ".join(f"{self.quote(name)} {type_name}" for name, type_name in columns)
        statement = self.create_temporary_table(relation, "")
        head, as_select, _ = statement.rpartition(" as ")
        if not as_select or relation not in head:
            raise ValueError(f"no columns can be declared in {statement!r}")
        return head.replace(relation, f"{relation} ({declared})", 1)

    def decimal_text(self, text: str, kind: str, formats: ValueFormats) -> str:
        """The text of a number with the configuration's decimal separator (decimal and float columns;
        an integer has no decimal point)."""
        if formats.decimal_separator == "." or not is_fractional(kind):
            return text
        return f"replace({text}, '.', {self.literal(formats.decimal_separator)})"

    def cte_hint(self, materialized: bool) -> str:
        return " materialized" if materialized else " not materialized"

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def literal(self, value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def contains(self, field: str, needle: str) -> str:
        return f"strpos({field}, {needle}) > 0"

    def char_length(self, expression: str) -> str:
        return f"char_length({expression})"

    def full_match(self, expression: str, pattern: str) -> str:
        return f"({expression} ~ {self.literal('^(?:' + pattern + ')$')})"

    def matches_ranges(self, expression: str, ranges: tuple[tuple[int, int], ...]) -> str:
        # NUL is never in a text value (PostgreSQL refuses it), and its escape is not a valid pattern.
        body = "".join(class_range(max(a, 1), b, "\\u{:04X}") for a, b in ranges if b >= 1)
        return self.full_match(expression, f"[{body}]*")

    def text_line(self, fields: list[str], separator: str, newline: str) -> str:
        specials = [self.text_literal(c) for c in (separator, '"', "\r", "\n")]
        quoted = []
        for field in fields:
            needs_quotes = " or ".join(self.contains(field, c) for c in specials)
            doubled = f"replace({field}, '\"', '\"\"')"
            quoted.append(f"case when {needs_quotes} then '\"' || {doubled} || '\"' else {field} end")
        joined = f"concat_ws({self.text_literal(separator)}, {', '.join(quoted)})"
        return f"{joined} || {self.text_literal(newline)}"

    def fixed_width_line(
        self, fields: list[str], widths: list[int], right_aligned: list[bool], newline: str
    ) -> str:
        # Not rpad/lpad: they cut a longer value, which validation must see (and refuse) whole.
        padded = []
        for field, width, right in zip(fields, widths, right_aligned, strict=True):
            spaces = f"repeat(' ', greatest({int(width)} - length({field}), 0))"
            padded.append(f"{spaces} || {field}" if right else f"{field} || {spaces}")
        return " || ".join([*padded, self.text_literal(newline)])

    def text_literal(self, value: str) -> str:
        """A string literal that spells control characters with chr(), so the SQL stays one line."""
        runs = [(printable, "".join(chars)) for printable, chars in groupby(value, str.isprintable)]
        pieces = [
            self.literal(run) if printable else " || ".join(f"chr({ord(c)})" for c in run)
            for printable, run in runs
        ]
        joined = " || ".join(pieces) or "''"
        return f"({joined})" if " || " in joined else joined


def class_range(first: int, last: int, escape: str) -> str:
    """A regex character-class range of code points, each spelled with `escape` (a format string)."""
    if first == last:
        return escape.format(first)
    return f"{escape.format(first)}-{escape.format(last)}"


POSITION = "_dm_position"


class PositionedRows:
    """For a warehouse whose tables do not keep insertion order (PostgreSQL, Spark): the staging table
    records each row's position in the file, and is read ordered by it."""

    def insertion_position(self) -> str:
        return POSITION

    def position_column(self, order: str) -> str:
        return f", row_number() over (order by {order}) - 1 as {POSITION}"

    def position_order(self) -> str:
        return f" order by {POSITION}"
