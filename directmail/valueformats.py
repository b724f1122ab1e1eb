"""How typed values are written (configuration keys `date_format`, `timestamp_format`, `decimal_separator`).

A pattern is a strftime pattern, written by every warehouse in its own SQL: DuckDB's `strftime` takes it
as it is, PostgreSQL's `to_char` and Spark's `date_format` (Java's pattern letters) take its translation
below. Only directives that give the same text on the three engines are accepted; the others are refused
when `direct_mail.yml` loads (`pattern_problem`). Text columns are never changed: only date, timestamp and
decimal or floating-point columns of the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ISO_DATE = "%Y-%m-%d"
DECIMAL_SEPARATORS = (".", ",")

# strftime directive → (PostgreSQL to_char, Spark date_format): digits only, the same on every engine.
DATE_DIRECTIVES = {
    "%Y": ("YYYY", "yyyy"),  # year, 4 digits
    "%y": ("YY", "yy"),  # year in the century, 2 digits
    "%m": ("MM", "MM"),  # month 01-12
    "%-m": ("FMMM", "M"),  # month 1-12
    "%d": ("DD", "dd"),  # day of the month 01-31
    "%-d": ("FMDD", "d"),  # day of the month 1-31
    "%j": ("DDD", "DDD"),  # day of the year 001-366
    "%-j": ("FMDDD", "D"),  # day of the year 1-366
}
TIME_DIRECTIVES = {
    "%H": ("HH24", "HH"),  # hour 00-23
    "%-H": ("FMHH24", "H"),  # hour 0-23
    "%I": ("HH12", "hh"),  # hour 01-12
    "%-I": ("FMHH12", "h"),  # hour 1-12
    "%p": ("AM", "a"),  # AM or PM
    "%M": ("MI", "mm"),  # minute 00-59
    "%-M": ("FMMI", "m"),  # minute 0-59
    "%S": ("SS", "ss"),  # second 00-59
    "%-S": ("FMSS", "s"),  # second 0-59
    "%f": ("US", "SSSSSS"),  # microseconds, 6 digits
}
DIRECTIVES = {**DATE_DIRECTIVES, **TIME_DIRECTIVES}
_TOKEN = re.compile(r"%-?.?|[^%]+", re.DOTALL)
# Why a strftime directive that Python knows is refused.
_REFUSED = {
    **dict.fromkeys(
        ("%a", "%A", "%b", "%B", "%h", "%c", "%x", "%X"),
        "names of months and days (and the locale's formats) are not written alike by every warehouse; "
        "use numbers",
    ),
    **dict.fromkeys(
        ("%z", "%Z"),
        "values are written in UTC (a timestamp with a time zone is converted first); write the zone "
        "as text, e.g. 'Z' or '+00:00'",
    ),
    **dict.fromkeys(
        ("%U", "%W", "%V", "%G", "%g", "%u", "%w"),
        "week numbers and weekdays are counted differently by the warehouses",
    ),
}


@dataclass(frozen=True)
class ValueFormats:
    """A configuration's formats; the defaults are contract 3's (ISO dates and timestamps, '.')."""

    date_format: str = ISO_DATE
    timestamp_format: str | None = None  # None: ISO 8601, fractional seconds only when there are some
    decimal_separator: str = "."


ISO = ValueFormats()


def tokens(pattern: str) -> list[tuple[bool, str]]:
    """(is a directive, text) for each piece of a pattern: directives, and the literal text between them
    in one piece each (`%%` is the literal text `%`)."""
    pieces: list[tuple[bool, str]] = []
    for match in _TOKEN.finditer(pattern):
        piece = match.group(0)
        is_directive = piece.startswith("%") and piece != "%%"
        text = "%" if piece == "%%" else piece
        if not is_directive and pieces and not pieces[-1][0]:
            pieces[-1] = (False, pieces[-1][1] + text)
        else:
            pieces.append((is_directive, text))
    return pieces


def pattern_problem(pattern: str, dates_only: bool) -> str | None:
    """Why a date (`dates_only`) or timestamp pattern cannot be written alike on every engine, or None."""
    if not pattern:
        return "empty: every value would be written empty"
    supported = DATE_DIRECTIVES if dates_only else DIRECTIVES
    directives, previous = 0, ""
    for is_directive, text in tokens(pattern):
        if not is_directive:
            if any(not c.isprintable() for c in text):
                return "holds a control character (a line break, a tab…), which a value cannot hold"
            previous = ""
            continue
        directives += 1
        if text in supported:
            if previous and DIRECTIVES[previous][1][0] == DIRECTIVES[text][1][0]:
                return (
                    f"{previous}{text}: two directives of one field side by side cannot be told apart in "
                    "Spark's pattern; put text between them"
                )
            previous = text
            continue
        if text in ("%", "%-"):
            return "ends with a lone %; write %% for a percent sign"
        if dates_only and text in TIME_DIRECTIVES:
            return f"{text} is a time of day, which a date does not have; use timestamp_format"
        reason = _REFUSED.get(text, "not a directive every warehouse writes alike")
        return f"{text}: {reason} (supported: {' '.join(supported)}, %%)"
    if directives == 0:
        return "holds no directive: every value would be written as the same text"
    return None


def postgres_template(pattern: str) -> str:
    """The `to_char` template of a checked pattern: literal text double-quoted (\\ escaping " and \\),
    and an empty "" between two directives, so that `DD` then `DDD` is not read as `DDD` then `DD`."""
    pieces: list[str] = []
    for i, (is_directive, text) in enumerate(tokens(pattern)):
        if is_directive:
            pieces.append(('""' if i and pieces[-1][-1] != '"' else "") + DIRECTIVES[text][0])
        else:
            pieces.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "".join(pieces)


def spark_pattern(pattern: str) -> str:
    """The `date_format` pattern (Java's letters) of a checked pattern: literal text in single quotes."""
    pieces: list[str] = []
    for is_directive, text in tokens(pattern):
        if is_directive:
            pieces.append(DIRECTIVES[text][1])
        else:
            pieces.append("'" + text.replace("'", "''") + "'")
    return "".join(pieces)


def duckdb_pattern(pattern: str) -> str:
    """DuckDB's `strftime` reads a checked pattern as Python does: the pattern itself."""
    return pattern


# Columns of these types (without precision) are written with the decimal separator.
FRACTIONAL_TYPES = frozenset(
    {"DECIMAL", "NUMERIC", "DEC", "FLOAT", "FLOAT4", "FLOAT8", "REAL", "DOUBLE", "DOUBLE PRECISION"}
)


def is_fractional(type_name: str) -> bool:
    """Whether a column of this warehouse type is written with a decimal point (decimal or float)."""
    return type_name.upper().split("(")[0].strip() in FRACTIONAL_TYPES
