"""Creating and changing cohorts."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from dash.curriculum import CurriculumNotFound, load_curriculum
from dash.errors import UserError
from dash.models import Cohort, Measure, Person
from dash.queries.cohorts import unused_code
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


def postpone_session(
    session: Session, *, cohort: Cohort, number: int, new_day: date, new_time: time | None = None
) -> Cohort:
    """Move session `number` to `new_day` (and `new_time`), keeping the sessions in order.

    Stored in `cohort.session_overrides`; bumping `schedule_version` makes the scheduler's next
    tick rewrite every team's reminder, follow-up and summaries that have not gone out yet.
    """
    from dash.schedule import session_slots
    from dash.timeutil import local_to_utc

    if not 1 <= number <= 6:
        raise UserError(f"there is no session {number}: sessions are numbered 1 to 6")
    curriculum = load_curriculum(cohort.topic)
    others = {slot.number: slot for slot in session_slots(cohort, curriculum)}
    start = new_time or others[number].start
    moved = local_to_utc(new_day, start, cohort.timezone)
    before = others.get(number - 1)
    after = others.get(number + 1)
    if before is not None and moved < before.ends_at:
        raise UserError(
            f"session {number} cannot start before session {number - 1} ends "
            f"({before.day.isoformat()} {before.start:%H:%M})"
        )
    if after is not None and moved + timedelta(minutes=cohort.session_minutes) > after.starts_at:
        raise UserError(
            f"session {number} must end before session {number + 1} starts "
            f"({after.day.isoformat()} {after.start:%H:%M}); postpone that one first"
        )
    overrides = dict(cohort.session_overrides or {})
    entry = {"day": new_day.isoformat()}
    if new_time is not None:
        entry["time"] = f"{new_time:%H:%M}"
    overrides[str(number)] = entry
    cohort.session_overrides = overrides  # a new dict, so the JSON column sees the change
    cohort.schedule_version += 1
    session.flush()
    return cohort


#: Cohort fields `update_cohort` may change; those marked True move scheduled steps.
UPDATABLE = {
    "name": False,
    "description": False,
    "join_link": False,
    "start_date": True,
    "timezone": True,
    "session_weekdays": True,
    "session_time": True,
    "session_minutes": True,
}


def update_cohort(session: Session, cohort: Cohort, **changes: Any) -> Cohort:
    """Change cohort fields; a change to timing bumps `schedule_version` so agendas follow.

    `session_weekdays` accepts 'mon,wed,fri'; `timezone` must be an IANA name.
    """
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise UserError(
            f"cannot change {', '.join(unknown)}; changeable: {', '.join(sorted(UPDATABLE))}"
        )
    if "session_weekdays" in changes:
        changes["session_weekdays"] = parse_weekdays(str(changes["session_weekdays"]))
    if "timezone" in changes:
        try:
            zone(str(changes["timezone"]))
        except BadTimeZone as exc:
            raise UserError(
                f"unknown time zone {changes['timezone']!r}: use an IANA name such as "
                "America/New_York"
            ) from exc
    if "session_minutes" in changes and not 10 <= int(changes["session_minutes"]) <= 180:
        raise UserError("a session lasts between 10 and 180 minutes")
    moves_schedule = False
    for name, value in changes.items():
        if getattr(cohort, name) != value:
            setattr(cohort, name, value)
            moves_schedule = moves_schedule or UPDATABLE[name]
    if moves_schedule:
        cohort.schedule_version += 1
    session.flush()
    return cohort
