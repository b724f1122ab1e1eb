"""The extract's data contract, checked with pandera on every Arrow batch before anything is delivered.

All written columns arrive as text (the warehouse formats them), so the checks are about what a mail house
can print: required address fields filled, ISO country codes, maximum lengths, values the configured
encoding can represent, no control characters and, in a fixed-width file, values that fit their column
on one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandera.polars as pa
import polars as pl
import pyarrow as pa_arrow
from pandera.api.polars.types import PolarsData

from directmail.campaign import Campaign
from directmail.extract import IDENTITY, ROW
from directmail.valuechecks import PRINTABLE, control_problem, encodes, value_checks

MAX_REPORTED_FAILURES = 20
FIXED_WIDTH = "fixed_width"  # the fixed-width check's name, as failure cases report it
CONTROL = "control_characters"  # the check of CONTROL_CHARACTERS (valuechecks.py), by name


@dataclass
class Failure:
    row: int
    identity: str
    column: str
    check: str
    value: str


@dataclass
class ExtractValidator:
    """Validates batch after batch, keeping the first failures and a total count."""

    campaign: Campaign
    labels: list[str]
    encoding: str
    column_widths: dict[str, int] | None = None  # a fixed-width file's: values must fit, on one line
    failures: list[Failure] = field(default_factory=list)
    failure_count: int = 0

    def __post_init__(self) -> None:
        self.schema = build_schema(self.campaign, self.labels, self.encoding, self.column_widths)

    def validate(self, batch: pa_arrow.RecordBatch) -> None:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)  # a record batch converts to a frame (an array, to a Series)
        try:
            self.schema.validate(frame, lazy=True)
        except pa.errors.SchemaErrors as exc:
            cases = exc.failure_cases
            self.failure_count += cases.height
            room = MAX_REPORTED_FAILURES - len(self.failures)
            for case in cases.head(max(room, 0)).iter_rows(named=True):
                index = case["index"]
                self.failures.append(
                    Failure(
                        row=frame[ROW][index] if index is not None else -1,
                        identity=frame[IDENTITY][index] if index is not None else "",
                        column=case["column"] or "",
                        check=case["check"],
                        value=str(case["failure_case"]),
                    )
                )

    def describe_failures(self) -> str:
        lines = [f"{self.failure_count} value(s) failed validation; nothing was delivered:"]
        for f in self.failures:
            lines.append(f"  row {f.row} (identity {f.identity}), column '{f.column}': {self._explain(f)}")
        if self.failure_count > len(self.failures):
            lines.append(f"  … and {self.failure_count - len(self.failures)} more")
        return "\n".join(lines)

    def _explain(self, failure: Failure) -> str:
        if failure.check == FIXED_WIDTH:
            return _fixed_width_problem(failure.value, (self.column_widths or {}).get(failure.column, 0))
        if failure.check == CONTROL:
            return f"{failure.value!r} {control_problem(failure.value)}"
        unencodable = list(dict.fromkeys(c for c in failure.value if not encodes(c, self.encoding)))
        if unencodable:
            return f"{''.join(unencodable)!r} cannot be written in {self.encoding}"
        if failure.value == "":
            return "required address field is empty"
        if failure.check.startswith("str_matches"):
            return f"{failure.value!r} is not an ISO 3166-1 alpha-2 country code"
        if failure.check.startswith("str_length"):
            return (
                f"{len(failure.value)} characters, more than {self.campaign.spec.max_lengths[failure.column]}"
            )
        return f"{failure.value!r} failed {failure.check}"


def build_schema(
    campaign: Campaign, labels: list[str], encoding: str, column_widths: dict[str, int] | None = None
) -> pa.DataFrameSchema:
    """`column_widths` (fixed_width): a column's limit is the smaller of its width and its max_lengths."""
    checks = value_checks(campaign, labels, encoding, column_widths)
    pattern = checks.pattern
    columns = {}
    for column in checks.columns:
        tests = []
        if column.required:
            tests.append(pa.Check.str_length(min_value=1))
        if column.country:
            tests.append(pa.Check.str_matches(r"^[A-Z]{2}$"))
        if column.max_length is not None:
            tests.append(pa.Check.str_length(max_value=column.max_length))
        if column.width is not None:
            tests.append(_fits(column.width))
        if pattern is not None:
            tests.append(pa.Check.str_matches(pattern))
        tests.append(pa.Check.str_matches(f"^{PRINTABLE}$", error=CONTROL))
        columns[column.label] = pa.Column(pl.Utf8, checks=tests, nullable=False)
    return pa.DataFrameSchema(columns, strict=False, name=campaign.name)


def _fits(width: int) -> pa.Check:
    """A fixed-width value: at most `width` characters, on one line (one vectorized pass per column)."""

    def fits(data: PolarsData) -> pl.LazyFrame:
        value = pl.col(data.key)
        return data.lazyframe.select((value.str.len_chars() <= width) & ~value.str.contains_any(["\r", "\n"]))

    return pa.Check(fits, error=FIXED_WIDTH)


def _fixed_width_problem(value: str, width: int) -> str:
    problems = []
    if "\r" in value or "\n" in value:
        problems.append(f"{value!r} holds a line break (CR or LF), which a fixed-width line cannot hold")
    if len(value) > width:
        problems.append(f"{len(value)} characters, wider than its column width {width}")
    return "; ".join(problems)
