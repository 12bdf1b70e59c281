"""`dash cohort list` and `dash cohort show ID`, and the checks `dash cohort create` makes on
its dates before creating anything.

dash.app.cli.main adds `list_command` and `show_command` beside `dash cohort create`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from dash.app.cli.common import parse_date, parse_time, ready_database
from dash.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dash.models import Cohort

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: A start further back than this is refused without --force (a Dash lasts two weeks, so
#: such a cohort is long over: most likely a mistyped year).
PAST_LIMIT_DAYS = 30
#: A start further ahead than this is refused without --force (likewise a mistyped year).
FUTURE_LIMIT_DAYS = 365


@dataclass(frozen=True)
class StartCheck:
    """What `dash cohort create` says about a start date: refusals (unless --force) and
    notes (printed, never blocking)."""

    refusals: list[str]
    notes: list[str]


def check_start(start: date, weekdays: list[int], today: date) -> StartCheck:
    """Refusals and notes for a cohort starting on `start` with sessions on `weekdays`
    (Monday = 0), where it is `today` in the cohort's time zone."""
    refusals: list[str] = []
    notes: list[str] = []
    ago = (today - start).days
    if ago > PAST_LIMIT_DAYS:
        refusals.append(
            f"--start {start.isoformat()} is {ago} days ago, so a two-week Dash starting then "
            "is long over; check the year, or add --force to create it anyway"
        )
    elif ago > 0:
        notes.append(
            f"--start {start.isoformat()} is {ago} day(s) ago: steps already past when the "
            "scheduler first runs are skipped, not sent"
        )
    ahead = -ago
    if ahead > FUTURE_LIMIT_DAYS:
        refusals.append(
            f"--start {start.isoformat()} is {ahead} days ahead; check the year, or add --force"
        )
    if start.weekday() not in weekdays:
        days = ", ".join(WEEKDAY_NAMES[d] for d in sorted(weekdays))
        first = start
        while first.weekday() not in weekdays:
            first += timedelta(days=1)
        refusals.append(
            f"--start {start.isoformat()} is a {WEEKDAY_NAMES[start.weekday()]} but the sessions "
            f"are on {days}, so session 1 would be {WEEKDAY_NAMES[first.weekday()]} "
            f"{first.isoformat()}; start on a session day, change --weekdays, or add --force"
        )
    return StartCheck(refusals, notes)


def _end_date(cohort: Cohort) -> date:
    from dash.curriculum import load_curriculum
    from dash.schedule import last_day

    return last_day(cohort, load_curriculum(cohort.topic))


def _team_counts(session: Session) -> dict[int, dict[str, int]]:
    from sqlalchemy import func, select

    from dash.models import Team

    counts: dict[int, dict[str, int]] = {}
    for cohort_id, state, n in session.execute(
        select(Team.cohort_id, Team.state, func.count()).group_by(Team.cohort_id, Team.state)
    ):
        counts.setdefault(cohort_id, {})[state] = n
    return counts


def _teams_text(counts: dict[str, int]) -> str:
    if not counts:
        return "no teams"
    total = sum(counts.values())
    parts = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in sorted(counts.items()))
    return f"{total} team(s): {parts}"


def list_command() -> None:
    """The cohorts: id, name, topic, dates, enrolment code and teams."""
    from sqlalchemy import select

    from dash.models import Cohort

    db = ready_database(writes=False)
    with db.transaction() as s:
        cohorts = s.execute(select(Cohort).order_by(Cohort.id)).scalars().all()
        if not cohorts:
            typer.echo("no cohorts yet: create one with `dash cohort create`")
            return
        counts = _team_counts(s)
        for cohort in cohorts:
            typer.echo(
                f"{cohort.id}  {cohort.name}\n"
                f"    {cohort.topic}, {cohort.start_date.isoformat()} to "
                f"{_end_date(cohort).isoformat()} ({cohort.timezone}), code "
                f"{cohort.enrolment_code}, {_teams_text(counts.get(cohort.id, {}))}"
            )


def show_command(
    cohort_id: Annotated[int, typer.Argument(metavar="ID", help="Cohort id.")],
) -> None:
    """One cohort: dates, code, teams and their states, coaches, sessions and join links."""
    from sqlalchemy import select

    from dash.curriculum import load_curriculum
    from dash.models import Cohort, Team
    from dash.schedule import baseline_days, session_slots

    db = ready_database(writes=False)
    with db.transaction() as s:
        cohort = s.get(Cohort, cohort_id)
        if cohort is None:
            raise UserError(f"there is no cohort {cohort_id}: see `dash cohort list`")
        curriculum = load_curriculum(cohort.topic)
        baseline = baseline_days(cohort, curriculum)
        lines = [
            f"cohort {cohort.id}: {cohort.name}",
            f"topic {cohort.topic} v{cohort.curriculum_version}, time zone {cohort.timezone}",
            f"dates {cohort.start_date.isoformat()} to {_end_date(cohort).isoformat()}"
            + (f" (baseline counts from {baseline[0].isoformat()})" if baseline else ""),
            f"enrolment code {cohort.enrolment_code} (key contacts send: "
            f"JOIN {cohort.enrolment_code})",
        ]
        coaches = sorted(cohort.coaches, key=lambda p: p.id)
        named = ", ".join(f"{p.name or '?'} <{p.email}>" for p in coaches)
        lines.append(f"coaches: {named or f'none (dash coach add ... --cohort {cohort.id})'}")
        teams = s.execute(
            select(Team).where(Team.cohort_id == cohort.id).order_by(Team.id)
        ).scalars()
        team_lines = [
            f"  {team.id}  {team.name}: {team.state.replace('_', ' ')}"
            + (f", team code {team.join_code}" if team.join_code else "")
            + (f", key contact {team.key_contact.name}" if team.key_contact else "")
            for team in teams
        ]
        lines.append(f"teams: {len(team_lines)}" if team_lines else "teams: none yet")
        lines += team_lines
        link = cohort.join_link
        lines.append(
            f"sessions ({cohort.session_minutes} min, local time)"
            + ("" if link else "; no join link set (the admin page sets one)")
            + ":"
        )
        for slot in session_slots(cohort, curriculum):
            lines.append(
                f"  {slot.number}  {WEEKDAY_NAMES[slot.day.weekday()]} "
                f"{slot.day.isoformat()} {slot.start:%H:%M}"
                + (" (moved)" if slot.postponed else "")
                + (f"  join {link}" if link else "")
            )
    for line in lines:
        typer.echo(line)


def create_command(
    topic: Annotated[str, typer.Option(help="Curriculum topic, see `dash curriculum list`.")],
    start: Annotated[str, typer.Option(help="First day of the Dash, YYYY-MM-DD.")],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. America/New_York.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    weekdays: Annotated[str, typer.Option(help="Three session weekdays.")] = "mon,wed,fri",
    session_time: Annotated[
        str, typer.Option("--time", help="Session start, local HH:MM.")
    ] = "12:30",
    minutes: Annotated[int, typer.Option(help="Session length in minutes.")] = 45,
    join_link: Annotated[str | None, typer.Option(help="Video-call link for the sessions.")] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Create it even if the start is long past, far ahead or not a session day."
        ),
    ] = False,
) -> None:
    """Create a cohort; the last line is `cohort <id> code <CODE>`."""
    from dash.actions.cohorts import create_cohort
    from dash.timeutil import local_date, utcnow

    db = ready_database()
    with db.transaction() as s:
        cohort = create_cohort(
            s,
            topic=topic,
            start=parse_date(start),
            timezone=timezone,
            name=name,
            weekdays=weekdays,
            session_time=parse_time(session_time),
            session_minutes=minutes,
            join_link=join_link,
        )
        # Checked once the zone and weekdays are known good; refusing rolls the cohort back.
        check = check_start(
            cohort.start_date, cohort.weekdays, local_date(utcnow(), cohort.timezone)
        )
        if check.refusals and not force:
            raise UserError(check.refusals[0])
        for line in check.refusals + check.notes:
            typer.echo(f"warning: {line}", err=True)
        typer.echo(
            f"{cohort.name}: {cohort.topic} v{cohort.curriculum_version}, "
            f"starts {cohort.start_date.isoformat()} ({cohort.timezone})"
        )
        typer.echo(f"key contacts enrol by sending: JOIN {cohort.enrolment_code}")
        typer.echo(f"cohort {cohort.id} code {cohort.enrolment_code}")
