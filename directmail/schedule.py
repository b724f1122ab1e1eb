"""When something runs on its own: a cron with its time zone, or one moment (`at`), checked the way
Prefect's scheduler will read it, so that what `validate` accepts, `serve` schedules."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from directmail.suggestions import did_you_mean


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str | None = None
    timezone: str = "UTC"
    at: datetime | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.cron is None) == (self.at is None):
            raise ValueError("give either cron (with timezone) or at, not both")
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("at needs a UTC offset, e.g. 2026-12-01T06:00:00+01:00")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, timezone: str) -> str:
        """A field of its own, so that a typo in it is reported beside a problem of the cron."""
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            close = did_you_mean(timezone, sorted(available_timezones()))
            raise ValueError(f"unknown timezone '{timezone}'{close}") from None
        return timezone

    @field_validator("cron")
    @classmethod
    def _schedulable_cron(cls, cron: str | None) -> str | None:
        if cron is not None:
            cron_problem(cron)
        return cron


def cron_problem(cron: str) -> None:
    """Raise ValueError unless `cron` is a 5-field cron that fires, read as Prefect's scheduler reads it.

    cronsim parses it (its reason names the bad field) and finds when it next fires: one that never does,
    such as Feb 31, is refused. Prefect's scheduler reads crons with croniter, which refuses a few forms
    that cronsim accepts or reads differently: those are refused too, so that what `validate` accepts,
    `serve` schedules.
    """
    fields = cron.split()
    if len(fields) != 5:  # cronsim reads a sixth field as leading seconds, croniter as trailing ones
        raise ValueError(f"cron '{cron}' has {len(fields)} fields; give 5: {' '.join(_CRON_FIELDS)}")
    if impossible := _impossible_date(*fields[2:]):
        raise ValueError(f"cron '{cron}' never fires: {impossible}")
    try:
        sim = CronSim(cron, datetime.now(UTC))
    except CronSimError as exc:
        raise ValueError(f"cron '{cron}' is not valid: {exc}") from None
    problem = _scheduler_problem(sim, *(field.upper() for field in fields[2:]))
    if problem:
        raise ValueError(f"cron '{cron}': {problem}")
    try:
        next(sim)
    except StopIteration:  # cronsim looks 50 years ahead
        raise ValueError(f"cron '{cron}' never fires") from None


_CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _numbers(field: str, names: tuple[str, ...] = ()) -> set[int] | None:
    """The values of a plain cron field (numbers, names, ranges, commas), or None for anything else."""
    values: set[int] = set()
    for term in field.split(","):
        low, _, high = term.partition("-")
        ends = []
        for end in (low, high or low):
            prefix = [i + 1 for i, name in enumerate(names) if name[:3].upper() == end.upper()]
            if prefix:
                ends.append(prefix[0])
            elif end.isdigit():
                ends.append(int(end))
            else:
                return None
        values.update(range(ends[0], ends[1] + 1))
    return values


def _impossible_date(day: str, month: str, weekday: str) -> str | None:
    """'31 February never occurs' for a day-of-month no month of the cron has (cronsim only says 'Bad
    day-of-month'). With a day-of-week other than '*' the cron fires on that weekday anyway."""
    days, months = _numbers(day), _numbers(month, _MONTH_NAMES)
    if weekday != "*" or not days or not months or not all(1 <= m <= 12 for m in months):
        return None
    if min(days) <= max(_MONTH_DAYS.get(m, 31) for m in months):
        return None
    named = " or ".join(_MONTH_NAMES[m - 1] for m in sorted(months))
    return f"{', '.join(map(str, sorted(days)))} {named} never occurs"


_MONTH_DAYS = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}


def _scheduler_problem(sim: CronSim, day: str, month: str, weekday: str) -> str | None:
    """What Prefect's scheduler (croniter) refuses, or reads unlike cronsim, in a 5-field cron."""
    days, weekdays = day.split(","), weekday.split(",")
    if any(("L" in term or "W" in term) and term != "L" for term in days):
        return f"day-of-month '{day}': of the L and W forms only 'L' (the last day) is supported"
    if any(term.endswith("L") for term in weekdays):
        return f"day-of-week '{weekday}': '<day>L' (last <day> of the month) is not supported"
    nth = [term for term in weekdays if "#" in term]
    if nth and (len(nth) < len(weekdays) or not day.startswith("*")):
        return f"day-of-week '{weekday}': '<day>#<n>' is supported only alone and with day-of-month '*'"
    if not sim.day_and and min(sim.days) > max(_MONTH_DAYS.get(m, 31) for m in sim.months):
        return f"day-of-month '{day}' never occurs in month '{month}'"
    return None
