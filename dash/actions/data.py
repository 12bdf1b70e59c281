"""Daily measure data: recording a day's count (corrections keep the old row).

Which prompt a reply answers, and the team's values and series, are reads: dash.queries.data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from dash.errors import UserError
from dash.models import Measure, MeasureValue, Message, Person, Team
from dash.parsing import MAX_COUNT
from dash.queries.data import current_value, team_today
from dash.timeutil import utcnow


@dataclass(frozen=True)
class Recorded:
    """A day's value as now recorded, and the one it replaced (None when it was the first)."""

    value: MeasureValue
    replaced: MeasureValue | None


def record_value(
    session: Session,
    *,
    team: Team,
    measure: Measure,
    day: date,
    numerator: int,
    denominator: int,
    person: Person | None,
    channel: str,
    message: Message | None = None,
) -> Recorded:
    """Record N/D for `measure` on `day`; an earlier value for that day stays as history.

    0/0 is a valid report (no eligible patients that day); a numerator above the
    denominator, negatives and a zero denominator with a positive numerator are refused.
    """
    if measure.cohort_id != team.cohort_id:
        raise UserError(f"{measure.key} is not a measure of {team.name}")
    if numerator < 0 or denominator < 0:
        raise UserError("counts cannot be negative")
    if numerator > denominator:
        raise UserError("the first number cannot be larger than the second")
    if denominator > MAX_COUNT:
        raise UserError(f"counts above {MAX_COUNT} are not daily unit counts")
    if day > team_today(team):
        raise UserError("that day has not happened yet")
    now = utcnow()
    previous = current_value(session, team, measure, day)
    if previous is not None:
        previous.is_current = False
        previous.replaced_at = now
        session.flush()  # the partial unique index allows one current row per day
    value = MeasureValue(
        team_id=team.id,
        measure_id=measure.id,
        day=day,
        numerator=numerator,
        denominator=denominator,
        is_current=True,
        reported_by_id=person.id if person else None,
        reported_at=now,
        channel=channel,
        message_id=message.id if message else None,
    )
    session.add(value)
    session.flush()
    return Recorded(value, previous)


