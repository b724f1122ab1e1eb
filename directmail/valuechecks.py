"""The extract's value checks (contract 3: what a mail house can print), defined once and spelled three
ways: as one SQL condition the warehouse evaluates over the whole extract, as Python for the few seed rows,
and as the pandera schema (schema.py) that names every failing value.

A clean extract — nearly every run — is proven clean by one warehouse query, and pandera (with pandas and
polars, about a second to import) is never loaded. Only when that query finds a failing row does the
runner validate batch by batch with pandera, whose report (row, identity, column, reason) is the error.
The SQL and Python conditions are never laxer than the pandera schema: they test the same things.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from directmail.errors import Finding

if TYPE_CHECKING:  # campaign.py reads CONTROL_CHARACTERS from here: no import of it at run time
    from directmail.campaign import Campaign
    from directmail.warehouse import SqlDialect

COUNTRY_CODE = r"[A-Z]{2}"  # ISO 3166-1 alpha-2, matched against the whole value
# What no value, note or label may hold, whatever the encoding: a mail house's software stops at NUL,
# runs ESC sequences, breaks lines at U+2028/U+2029 or prints garbage for the rest. C0 controls but TAB,
# LF and CR (quoted, as contract 3 says); DEL; the C1 controls; the line and paragraph separators. One regex
# class that Python, RE2 (DuckDB), PostgreSQL, Java (Spark) and Rust (pandera's polars) read alike: each
# \xHH escape is followed by `\`, `-` or a non-hex character (PostgreSQL's \x takes every hex digit), and
# the two separators are written as themselves.
CONTROL_CHARACTERS = "\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F\u2028\u2029"
PRINTABLE = f"[^{CONTROL_CHARACTERS}]*"  # a whole value free of them (full_match)
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")


@dataclass(frozen=True)
class ColumnChecks:
    """What one written column's every value must satisfy."""

    label: str
    required: bool = False  # an address field that must not be empty
    country: bool = False  # an ISO 3166-1 alpha-2 code
    max_length: int | None = None  # max_lengths (when tighter than the column width)
    width: int | None = None  # a fixed-width file's column: at most this many characters, no CR or LF

    @property
    def any(self) -> bool:
        return self.required or self.country or self.max_length is not None or self.width is not None


@dataclass(frozen=True)
class ValueChecks:
    """Every written column's checks, and the encoding every value must be representable in."""

    columns: list[ColumnChecks]
    encoding: str

    @property
    def pattern(self) -> str | None:
        """A regex (Python and Rust syntax) matching the values the encoding can represent, or None."""
        return encodable_pattern(self.encoding)

    def failing_sql(self, dialect: SqlDialect, fields: list[str]) -> str:
        """A condition true for a row (its text columns `fields`, in label order) with any failing value."""
        ranges = encodable_ranges(self.encoding)
        conditions = []
        for column, field in zip(self.columns, fields, strict=True):
            length = dialect.char_length(field)
            if column.required:
                conditions.append(f"{field} = ''")
            if column.country:
                conditions.append(f"not {dialect.full_match(field, COUNTRY_CODE)}")
            if column.max_length is not None:
                conditions.append(f"{length} > {int(column.max_length)}")
            if column.width is not None:
                conditions.append(f"{length} > {int(column.width)}")
                breaks = [dialect.contains(field, dialect.text_literal(c)) for c in ("\r", "\n")]
                conditions.append(" or ".join(breaks))
            if ranges is not None:
                conditions.append(f"not {dialect.matches_ranges(field, ranges)}")
        # One regex over the row's values joined (each is text, never NULL), not one per column.
        conditions.append(f"not {dialect.full_match('(' + ' || '.join(fields) + ')', PRINTABLE)}")
        return " or ".join(f"({c})" for c in conditions)

    def row_fails(self, values: list[str]) -> bool:
        """Python's spelling of failing_sql, for rows read into Python (the seed list)."""
        for column, value in zip(self.columns, values, strict=True):
            if _CONTROL.search(value):
                return True
            if column.required and value == "":
                return True
            if column.country and re.fullmatch(COUNTRY_CODE, value) is None:
                return True
            if column.max_length is not None and len(value) > column.max_length:
                return True
            if column.width is not None and (len(value) > column.width or "\r" in value or "\n" in value):
                return True
            if self.pattern is not None and not encodes(value, self.encoding):
                return True  # (no encoding offered other than UTF-8 represents a character past U+FFFF)
        return False


def value_checks(
    campaign: Campaign, labels: list[str], encoding: str, column_widths: dict[str, int] | None = None
) -> ValueChecks:
    """`column_widths` (fixed_width): a column's limit is the smaller of its width and its max_lengths."""
    spec = campaign.spec
    widths = column_widths or {}
    required = set(spec.address_columns.required()) if spec.address_columns else set()
    country = spec.address_columns.country if spec.address_columns else None
    columns = []
    for label in labels:
        limit = spec.max_lengths.get(label)
        if limit is not None and label in widths and limit >= widths[label]:
            limit = None  # the width is the tighter limit
        columns.append(ColumnChecks(label, label in required, label == country, limit, widths.get(label)))
    return ValueChecks(columns, encoding)


@lru_cache(maxsize=8)
def encodable_ranges(encoding: str) -> tuple[tuple[int, int], ...] | None:
    """The code point ranges (Basic Multilingual Plane) the encoding can represent (None: all of them)."""
    if encoding.startswith("utf-8"):
        return None
    allowed = [cp for cp in range(0x10000) if not 0xD800 <= cp <= 0xDFFF and encodes(chr(cp), encoding)]
    ranges, start, previous = [], allowed[0], allowed[0]
    for cp in allowed[1:]:
        if cp != previous + 1:
            ranges.append((start, previous))
            start = cp
        previous = cp
    ranges.append((start, previous))
    return tuple(ranges)


@lru_cache(maxsize=8)
def encodable_pattern(encoding: str) -> str | None:
    """A regex matching strings the encoding can represent (None: every string can be)."""
    ranges = encodable_ranges(encoding)
    if ranges is None:
        return None

    def escape(cp: int) -> str:
        return f"\\u{cp:04X}"

    body = "".join(escape(a) if a == b else f"{escape(a)}-{escape(b)}" for a, b in ranges)
    return f"^[{body}]*$"


def control_problem(text: str) -> str | None:
    """Why a value, note or label holding CONTROL_CHARACTERS cannot be written (None: it holds none)."""
    found = list(dict.fromkeys(_CONTROL.findall(text)))
    if not found:
        return None
    codes = ", ".join(f"U+{ord(c):04X}" for c in found)
    what = "a control character" if len(found) == 1 else "control characters"
    return f"holds {codes}, {what} a mail house's file cannot carry"


def encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def header_findings(campaign: Campaign, labels: list[str], encoding: str) -> list[Finding]:
    """Notes and labels must fit the encoding, and hold no control character, too; they are not part of
    the validated rows."""
    spec = campaign.spec
    texts = {"header_note": spec.header_note, "footer_note": spec.footer_note, "": "".join(labels)}
    findings = []
    for key, text in texts.items():
        if text is None:
            continue
        reasons = [
            control_problem(text),
            None if encodes(text, encoding) else f"cannot be written in {encoding}",
        ]
        where = campaign.key(key) if key else f"models.{campaign.name}"
        findings += [
            Finding(campaign.yaml_file, where, f"{key or 'a column label'} {reason}")
            for reason in reasons
            if reason
        ]
    return findings
