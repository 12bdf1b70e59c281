"""Creating and changing cohorts."""

from __future__ import annotations

from datetime import date, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.codes import new_code
from dash.curriculum import CurriculumNotFound, load_curriculum
from dash.errors import UserError
from dash.models import Cohort, Measure, Person, Team
from dash.timeutil import BadTimeZone, zone

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_weekdays(text: str) -> str:
    """'mon,wed,fri' or '0,2,4' -> '0,2,4' (three distinct days, Monday = 0)."""
    days: list[int] = []
    for part in text.replace(" ", "").lower().split(","):
        if part in WEEKDAYS:
            days.append(WEEKDAYS.index(part))
        elif part[:3] in WEEKDAYS:
            days.append(WEEKDAYS.index(part[:3]))
        elif part.isdigit() and 0 <= int(part) <= 6:
            days.append(int(part))
        else:
            raise UserError(f"unknown weekday {part!r}: use mon,tue,wed,thu,fri,sat,sun")
    if len(set(days)) != 3:
        raise UserError("a Dash meets on three different weekdays, e.g. mon,wed,fri")
    return ",".join(str(d) for d in sorted(set(days)))


def unused_code(session: Session) -> str:
    """A code that is neither a cohort's enrolment code nor a team's join code."""
    while True:
        code = new_code()
        taken = (
            session.execute(select(Cohort.id).where(Cohort.enrolment_code == code)).first()
            or session.execute(select(Team.id).where(Team.join_code == code)).first()
        )
        if not taken:
            return code


def create_cohort(
    session: Session,
    *,
    topic: str,
    start: date,
    timezone: str,
    name: str | None = None,
    weekdays: str = "mon,wed,fri",
    session_time: time = time(12, 30),
    session_minutes: int = 45,
    join_link: str | None = None,
    coaches: list[Person] | None = None,
) -> Cohort:
    """A cohort on `topic` running the curriculum's current version; measures copied in."""
    try:
        curriculum = load_curriculum(topic)
    except CurriculumNotFound as exc:
        raise UserError(str(exc)) from exc
    try:
        zone(timezone)
    except BadTimeZone as exc:
        raise UserError(
            f"unknown time zone {timezone!r}: use an IANA name such as America/New_York"
        ) from exc
    cohort = Cohort(
        name=name or f"{curriculum.title.get('en')} – {start.isoformat()}",
        topic=curriculum.topic,
        curriculum_version=curriculum.version,
        start_date=start,
        timezone=timezone,
        session_weekdays=parse_weekdays(weekdays),
        session_time=session_time,
        session_minutes=session_minutes,
        join_link=join_link,
        enrolment_code=unused_code(session),
        session_overrides={},
    )
    session.add(cohort)
    session.flush()
    for position, m in enumerate(curriculum.measures):
        session.add(
            Measure(
                cohort_id=cohort.id,
                key=m.key,
                name=m.name.get("en"),
                better=m.better,
                goal=m.goal,
                primary=m.primary,
                position=position,
            )
        )
    for coach in coaches or []:
        cohort.coaches.append(coach)
    session.flush()
    return cohort
