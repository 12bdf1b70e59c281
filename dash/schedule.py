"""A cohort's calendar: which days a Dash asks for data and when each session starts.

Pure functions of a cohort and its curriculum, shared by the scheduler (which compiles the agenda
from them), the cohort actions (which check a postponement keeps the sessions in order) and the
metrics (which count the days asked). All wall-clock times are the unit's local time
(`cohort.timezone`); instants are converted with dash.timeutil so DST changes land right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dash.curriculum import Curriculum
from dash.models import Cohort, Team
from dash.settings import Settings
from dash.timeutil import local_to_utc


@dataclass(frozen=True)
class SessionSlot:
    """When one of the six sessions takes place (after any postponement)."""

    number: int
    day: date
    start: time
    starts_at: datetime
    ends_at: datetime
    postponed: bool


def session_weekday_dates(cohort: Cohort, count: int = 6) -> list[date]:
    """The first `count` session days: dates on or after the start on the cohort's weekdays.

    For a cohort starting on a Monday this is exactly the curriculum's rule (slot k in week
    (k-1)//3 on weekday index (k-1)%3); a mid-week start simply begins with the next session day
    instead of one before the start.
    """
    weekdays = set(cohort.weekdays) or {0, 2, 4}
    found: list[date] = []
    day = cohort.start_date
    while len(found) < count:
        if day.weekday() in weekdays:
            found.append(day)
        day += timedelta(days=1)
    return found


def parse_hhmm(value: str) -> time:
    """'HH:MM' (24-hour) as a time; ValueError otherwise."""
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes))


def session_slots(cohort: Cohort, curriculum: Curriculum) -> list[SessionSlot]:
    """The six sessions in number order, with `cohort.session_overrides` applied."""
    days = session_weekday_dates(cohort)
    overrides = cohort.session_overrides or {}
    slots: list[SessionSlot] = []
    for session in curriculum.sessions:
        day = days[session.slot - 1]
        start = cohort.session_time
        override = overrides.get(str(session.number)) or {}
        if override.get("day"):
            day = date.fromisoformat(override["day"])
        if override.get("time"):
            start = parse_hhmm(override["time"])
        starts_at = local_to_utc(day, start, cohort.timezone)
        slots.append(
            SessionSlot(
                number=session.number,
                day=day,
                start=start,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=cohort.session_minutes),
                postponed=bool(override),
            )
        )
    return slots


def dash_days(cohort: Cohort, curriculum: Curriculum) -> list[date]:
    """The days of the Dash itself (day 1 is the start date)."""
    return [cohort.start_date + timedelta(days=i) for i in range(curriculum.schedule.days)]


def baseline_days(cohort: Cohort, curriculum: Curriculum) -> list[date]:
    """The days before the start on which baseline data is already asked for."""
    n = curriculum.schedule.baseline_days
    return [cohort.start_date - timedelta(days=n - i) for i in range(n)]


def asked_days(cohort: Cohort, curriculum: Curriculum) -> list[date]:
    """Every day a daily measure prompt goes out: baseline days, then the Dash."""
    return baseline_days(cohort, curriculum) + dash_days(cohort, curriculum)


def last_day(cohort: Cohort, curriculum: Curriculum) -> date:
    return cohort.start_date + timedelta(days=curriculum.schedule.days - 1)


def quiet_hours(
    team: Team | None, curriculum: Curriculum | None, settings: Settings
) -> tuple[time, time]:
    """The quiet window for a team: its own, else the curriculum's default, else settings."""
    if team is not None and team.quiet_start is not None and team.quiet_end is not None:
        return team.quiet_start, team.quiet_end
    if curriculum is not None:
        return curriculum.schedule.quiet_start, curriculum.schedule.quiet_end
    return settings.default_quiet_start, settings.default_quiet_end
