"""The scheduler tests' calendar and look-ups: the opioid-safety cohort's start day, New York
wall times, agenda rows, outbox rows, the people of a role, and a day's data reported."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from dash.models import AgendaItem, Cohort, MeasureValue, OutboxItem, Person, Team

# The opioid-safety cohort starts Monday 7 December 2026 in New York (UTC-5): daily prompts at
# 18:00 local = 23:00 UTC, nudges two hours later, session 1 at 12:30 local = 17:30 UTC.
START = date(2026, 12, 7)


def ny(day: date, hh: int, mm: int = 0) -> datetime:
    """A New York wall time in December (EST, UTC-5) as a UTC instant."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC) + timedelta(hours=5)


def outbox(s, **where) -> list[OutboxItem]:
    query = select(OutboxItem).order_by(OutboxItem.id)
    for name, value in where.items():
        query = query.where(getattr(OutboxItem, name) == value)
    return list(s.execute(query).scalars())


def row(s, team_id: int, key: str) -> AgendaItem:
    return s.execute(
        select(AgendaItem).where(AgendaItem.team_id == team_id, AgendaItem.step_key == key)
    ).scalar_one()


def people(s, team: Team, role: str) -> list[Person]:
    from dash.queries.recipients import team_people

    return team_people(s, team, (role,))


def report_data(s, team_id: int, day: date, measures: int | None = None) -> None:
    team = s.get(Team, team_id)
    cohort = s.get(Cohort, team.cohort_id)
    for measure in cohort.measures[:measures]:
        s.add(
            MeasureValue(
                team_id=team_id,
                measure_id=measure.id,
                day=day,
                numerator=4,
                denominator=5,
                channel="console",
            )
        )
