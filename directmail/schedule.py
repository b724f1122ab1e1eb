"""When something runs on its own: a cron with its time zone, or one moment (`at`), checked the way
Prefect's scheduler will read it, so that what `validate` accepts, `serve` schedules."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, field_validator, model_validator


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
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone '{self.timezone}'") from None
        return self

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
