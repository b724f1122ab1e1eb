"""A mail house's return file, read and checked whole: its rows, or every bad row with its line number.

The file is CSV (comma, `"` quoting, LF or CRLF), one return per row: `identity,reason[,returned_at]`.
It is checked completely before anything is stored, so a file with one bad row is refused as a whole and
the operator gets every bad line at once (see docs/cli.md#directmail-returns-ingest).
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from directmail.errors import DirectMailError

REASONS = ("undeliverable", "moved", "deceased", "refused")
HEADER = ("identity", "reason", "returned_at")
MAX_LISTED = 20  # bad rows named in the error; the count of the rest follows
MAX_IDENTITY_LENGTH = 256
# A mail house a day ahead of UTC may date a return "today": its date is up to a day after our clock.
FUTURE_TOLERANCE = timedelta(days=1)
EARLIEST = datetime(1970, 1, 1)
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Characters no identity a runner mailed holds: a return carrying one suppresses nobody. By Unicode
# category: control characters (NUL, tab, …) and line separators; invisible format characters (a BOM
# inside the text, zero-width space, soft hyphen, bidi marks).
ODD_CHARACTERS = {
    "control": ("Cc", "Zl", "Zp"),
    "invisible": ("Cf",),
}


@dataclass(frozen=True)
class ReturnRow:
    identity: str
    reason: str
    returned_at: datetime  # UTC, naive
    line: int  # where it is in the file (its first line, for a quoted value spanning lines)
    dated: bool = True  # False: the file gave no returned_at (it is the ingest time)


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class ReturnFileRefused(DirectMailError):
    """A return file with bad rows: nothing of it is stored. The message names each bad line."""

    def __init__(self, name: str, problems: list[BadRow]):
        self.name = name
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        listed = [f"{self.name}: {problem}" for problem in self.problems[:MAX_LISTED]]
        more = len(self.problems) - len(listed)
        if more:
            listed.append(f"{self.name}: … and {more:,} more bad row(s)")
        count = len(self.problems)
        summary = f"{self.name}: refused, nothing stored: {count:,} bad row{'s' if count != 1 else ''}"
        return [summary, *listed]


def parse_return_file(data: bytes, name: str, ingested_at: datetime) -> list[ReturnRow]:
    """Every return of the file (a row repeated in the file is kept once), or ReturnFileRefused.

    `ingested_at` (UTC) is the default returned_at and the reference for a date in the future. A row
    without returned_at repeats any row of the same identity and reason: it is kept only when none is.
    """
    text = _decode(data, name)
    now = _utc(ingested_at)
    rows: list[ReturnRow] = []
    problems: list[BadRow] = []
    seen: set[tuple[str, str, datetime | None]] = set()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    first_data_row = True
    line = 1
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # an unclosed quote, a stray quote: the rest cannot be read reliably
            problems.append(BadRow(line, f"not readable as CSV ({exc})"))
            break
        if not fields or all(not f.strip() for f in fields):
            continue  # blank lines are allowed anywhere
        if first_data_row:
            first_data_row = False
            if _is_header(fields):
                continue
        row, problem = _check_row(fields, line, now)
        if problem is not None:
            problems.append(BadRow(line, problem))
        elif row is not None and (key := _key(row)) not in seen:
            seen.add(key)
            rows.append(row)
    if problems:
        raise ReturnFileRefused(name, problems)
    return _without_undated_repeats(rows)


def _key(row: ReturnRow) -> tuple[str, str, datetime | None]:
    """A row repeated in the file: the same identity, reason and returned_at (none given: no date)."""
    return row.identity, row.reason, row.returned_at if row.dated else None


def _without_undated_repeats(rows: list[ReturnRow]) -> list[ReturnRow]:
    """A return without a date says only "this identity, this reason": a dated row of the file already
    says it (a cumulative file lists a return again, dated once and undated later, or the reverse)."""
    dated = {(row.identity, row.reason) for row in rows if row.dated}
    return [row for row in rows if row.dated or (row.identity, row.reason) not in dated]


def odd_characters(identity: str) -> dict[str, str]:
    """The first character of each odd kind (control, invisible) the identity holds; none: {}."""
    found: dict[str, str] = {}
    if identity.isprintable():  # no control, format or separator character but the space
        return found
    for character in identity:
        category = unicodedata.category(character)
        for kind, categories in ODD_CHARACTERS.items():
            if category in categories:
                found.setdefault(kind, character)
    return found


def _decode(data: bytes, name: str) -> str:
    """UTF-8, with or without a byte order mark; every line that is not UTF-8 is named."""
    if data.startswith(UTF16_BOMS):
        raise ReturnFileRefused(name, [BadRow(1, "the file is UTF-16; return files must be UTF-8")])
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    problems = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            byte = raw[exc.start]
            reason = f"not UTF-8 (byte 0x{byte:02x} at character {exc.start + 1}); save the file as UTF-8"
            problems.append(BadRow(number, reason))
    raise ReturnFileRefused(name, problems)


def _is_header(fields: list[str]) -> bool:
    labels = tuple(f.strip().lower() for f in fields)
    return labels in (HEADER[:2], HEADER)


def _check_row(fields: list[str], line: int, now: datetime) -> tuple[ReturnRow | None, str | None]:
    if len(fields) not in (2, 3):
        return None, f"{len(fields)} field(s); expected identity,reason[,returned_at]"
    identity, reason = fields[0].strip(), fields[1].strip().lower()
    if not identity:
        return None, "empty identity"
    if len(identity) > MAX_IDENTITY_LENGTH:
        return None, f"identity longer than {MAX_IDENTITY_LENGTH} characters"
    if reason not in REASONS:
        shown = fields[1].strip()
        return None, f"unknown reason '{shown}' (expected one of {', '.join(REASONS)})"
    moment_text = fields[2].strip() if len(fields) == 3 else ""
    if not moment_text:
        return ReturnRow(identity, reason, now, line, dated=False), None
    try:
        moment = _utc(datetime.fromisoformat(moment_text))
    except ValueError:
        return None, f"returned_at '{moment_text}' is not an ISO 8601 date or timestamp"
    if moment > now + FUTURE_TOLERANCE:
        return None, f"returned_at '{moment_text}' is in the future"
    if moment < EARLIEST:
        return None, f"returned_at '{moment_text}' is before 1970"
    return ReturnRow(identity, reason, moment, line), None


def _utc(moment: datetime) -> datetime:
    """Naive UTC to the microsecond: a value with an offset is converted, a naive one taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
