"""`format: fixed_width`: each value padded with spaces to its column's width, no separator, no quoting.

A mail house reads such a file by position, so there is no row of labels (the notes stay, as they are).
The warehouse pads the values in the same SQL that writes the other formats' lines (the dialect's
`fixed_width_line`): numbers are padded on the left (right-aligned), everything else on the right, and
NULL is all spaces. Widths count characters (Unicode code points), as `len()` and the warehouse's
`length()` do; a value longer than its width, or holding CR or LF, is refused by validation (schema.py)
before anything is written, never cut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from directmail.campaign import Campaign
from directmail.textformat import LineEncoder

if TYPE_CHECKING:
    from directmail.warehouse import SqlDialect

# Type names (as the warehouses spell them, without precision) whose values are numbers: right-aligned.
NUMBER_TYPES = frozenset(
    {
        "TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "INT1", "INT2", "INT4", "INT8",
        "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "VARINT", "BIGNUM",
        "DECIMAL", "NUMERIC", "DEC", "FLOAT", "FLOAT4", "FLOAT8", "REAL", "DOUBLE", "DOUBLE PRECISION",
    }
)  # fmt: skip


def is_number(type_name: str) -> bool:
    """Whether a column of this warehouse type holds numbers (integer, decimal or float)."""
    return type_name.upper().split("(")[0].strip() in NUMBER_TYPES


class FixedWidthEncoder(LineEncoder):
    """Lines of padded values; notes as they are; no header row of labels."""

    def __init__(self, widths: list[int], right_aligned: list[bool], newline: str, encoding: str):
        super().__init__("", newline, encoding)
        self.widths = widths
        self.right_aligned = right_aligned

    def header(self, labels: list[str]) -> bytes:
        return b""

    def line_sql(self, dialect: SqlDialect, fields: list[str]) -> str:
        return dialect.fixed_width_line(fields, self.widths, self.right_aligned, self.newline)


def fixed_width_encoder(
    campaign: Campaign, labels: list[str], types: list[str], newline: str, encoding: str
) -> FixedWidthEncoder:
    """The encoder of a campaign's written columns (check_columns made sure each has a width)."""
    widths = campaign.spec.column_widths or {}
    return FixedWidthEncoder(
        [widths[label] for label in labels], [is_number(t) for t in types], newline, encoding
    )
