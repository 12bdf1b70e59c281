"""Today: what needs this coach now, most urgent first, each item linking to its team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, Row, func, select
from sqlalchemy.orm import Session, joinedload
from starlette.responses import Response

from dash.actions.enrolment import confirm_self_signoff
from dash.curriculum import load_curriculum
from dash.models import (
    Cohort,
    Measure,
    MeasureValue,
    Message,
    PdsaCycle,
    PdsaState,
    PendingQuestion,
    Person,
    Team,
)
from dash.models.teams import TeamState
from dash.privacy import mask_identifiers
from dash.queries.enrolment import self_signoffs
from dash.schedule import asked_days, baseline_days
from dash.timeutil import local_date, utcnow
from dash.web.access import limit_cohorts, team_for, visible_cohorts
from dash.web.pages import Page, redirect

DASH_DAYS = 14

# Lower is more urgent: a person waiting beats a missing number beats paperwork.
RANK = {"thread": 0, "newcomer": 0, "missing": 1, "confirm": 2, "signoff": 2, "plan": 3, "signal": 4, "missing_today": 5}


@dataclass
class Item:
    kind: str
    team: Team | None  # None: someone enrolling whose team does not exist yet (`cohort`)
    since: datetime | None
    summary: str
    detail: str = ""
    cohort: Cohort | None = None

    @property
    def sort_key(self) -> tuple[int, datetime]:
        return RANK[self.kind], self.since or datetime.max.replace(tzinfo=utcnow().tzinfo)


def enrolled_teams(db: Session, user: Person) -> list[Team]:
    """The coach's enrolled teams by name, their cohorts joined in and the cohorts' measures
    in one more statement (rather than two lazy loads per cohort when a team first reads them)."""
    query = (
        select(Team)
        .where(Team.state == TeamState.ENROLLED.value)
        .order_by(Team.name)
        .options(joinedload(Team.cohort).selectinload(Cohort.measures))
    )
    return list(db.execute(limit_cohorts(query, user, Team.cohort_id)).unique().scalars())


def waiting_threads(db: Session, user: Person) -> list[Item]:
    """One item per team with messages waiting for a coach: since the oldest, with a preview."""
    query = (
        select(Message, Team)
        .join(Team, Team.id == Message.team_id)
        .where(Message.needs_reply.is_(True))
        .order_by(Message.created_at, Message.id)
    )
    items: dict[int, Item] = {}
    counts: dict[int, int] = {}
    for message, team in db.execute(limit_cohorts(query, user, Team.cohort_id)):
        counts[team.id] = counts.get(team.id, 0) + 1
        if team.id not in items:
            items[team.id] = Item(
                "thread", team, message.created_at, "", mask_identifiers(message.text)[:160]
            )
    for team_id, item in items.items():
        n = counts[team_id]
        item.summary = f"{n} message{'s' if n != 1 else ''} waiting for your reply"
    return list(items.values())


def stalled_enrolments(db: Session, user: Person) -> list[Item]:
    """Key contacts who missed a question twice before their team existed (their name,
    hospital or unit): one item per person, in the cohort whose code they sent."""
    query = (
        select(Message, Person, PendingQuestion)
        .join(Person, Person.id == Message.person_id)
        .join(PendingQuestion, PendingQuestion.person_id == Person.id)
        .where(
            Message.needs_reply.is_(True),
            Message.team_id.is_(None),
            PendingQuestion.flow == "enrol",
        )
        .order_by(Message.created_at, Message.id)
    )
    cohorts = {c.id: c for c in visible_cohorts(db, user)}
    items: dict[int, Item] = {}
    for message, person, pending in db.execute(query):
        cohort = cohorts.get(int((pending.data or {}).get("cohort_id") or 0))
        if cohort is None or person.id in items:
            continue
        items[person.id] = Item(
            "newcomer",
            None,
            message.created_at,
            f"{person.name or 'A new key contact'} is stuck enrolling a unit"
            f" (question: {pending.step})",
            mask_identifiers(message.text)[:160],
            cohort,
        )
    return list(items.values())


def dash_days(team: Team, today: date) -> list[date]:
    """Yesterday and today, where they fall inside the team's two weeks."""
    start = team.cohort.start_date
    end = start + timedelta(days=DASH_DAYS - 1)
    return [d for d in (today - timedelta(days=1), today) if start <= d <= end]


def _current_values(
    db: Session, teams: list[Team], *conditions: ColumnElement[bool]
) -> list[Row[tuple[int, int, date, int, int]]]:
    """Current (team, measure, day, numerator, denominator) rows of `teams` in one query.

    Selected through the teams' cohorts (a handful of ids), not a list of team ids, so an
    admin's thousands of teams stay within the drivers' bound-parameter limits."""
    if not teams:
        return []
    wanted = {team.id for team in teams}
    in_cohorts = select(Team.id).where(
        Team.cohort_id.in_(sorted({team.cohort_id for team in teams})),
        Team.state == TeamState.ENROLLED.value,
    )
    rows = db.execute(
        select(
            MeasureValue.team_id,
            MeasureValue.measure_id,
            MeasureValue.day,
            MeasureValue.numerator,
            MeasureValue.denominator,
        ).where(
            MeasureValue.team_id.in_(in_cohorts),
            MeasureValue.is_current.is_(True),
            *conditions,
        )
    )
    return [row for row in rows if row.team_id in wanted]


def missing_data(db: Session, teams: list[Team], now: datetime) -> list[Item]:
    """Measures with no value for yesterday (urgent) or today (not over yet) in the unit's zone.

    The values of every team's yesterday and today come in one query (days differ by zone)."""
    days_of = {team.id: dash_days(team, local_date(now, team.cohort.timezone)) for team in teams}
    wanted = sorted({day for days in days_of.values() for day in days})
    have: dict[tuple[int, date], set[int]] = {}
    if wanted:
        for team_id, measure_id, day, _, _ in _current_values(
            db, teams, MeasureValue.day.in_(wanted)
        ):
            have.setdefault((team_id, day), set()).add(measure_id)
    items: list[Item] = []
    for team in teams:
        today = local_date(now, team.cohort.timezone)
        measures: list[Measure] = team.cohort.measures
        for day in days_of[team.id]:
            reported = have.get((team.id, day), set())
            missing = [m.name for m in measures if m.id not in reported]
            if not missing:
                continue
            label = "yesterday" if day < today else "today (so far)"
            items.append(
                Item(
                    "missing" if day < today else "missing_today",
                    team,
                    None,
                    f"No data for {label}, {day:%a} {day.day} {day:%b}",
                    ", ".join(missing),
                )
            )
    return items


def plans_to_review(db: Session, user: Person) -> list[Item]:
    query = (
        select(PdsaCycle, Team)
        .join(Team, Team.id == PdsaCycle.team_id)
        .where(PdsaCycle.reviewed_at.is_(None), PdsaCycle.state != PdsaState.PLANNING.value)
        .order_by(PdsaCycle.updated_at)
    )
    items = []
    for cycle, team in db.execute(limit_cohorts(query, user, Team.cohort_id)):
        items.append(
            Item(
                "plan",
                team,
                cycle.updated_at,
                f"PDSA cycle {cycle.number} to review",
                mask_identifiers(cycle.change_text)[:160],
            )
        )
    return items


def pending_signoffs(db: Session, user: Person) -> list[Item]:
    """Teams waiting for their leader, and (to confirm here) key contacts who approved their
    own unit: those stay unenrolled until a coach presses Confirm."""
    query = select(Team).where(Team.state == TeamState.AWAITING_SIGNOFF.value)
    teams = list(db.execute(limit_cohorts(query, user, Team.cohort_id)).scalars())
    own = self_signoffs(db) if teams else {}
    items = []
    for team in teams:
        approval = own.get(team.id)
        if approval is not None:
            items.append(
                Item(
                    "confirm",
                    team,
                    approval.decided_at,
                    f"{approval.leader_name or 'The key contact'} signed off their own unit:"
                    " confirm to enrol the team",
                    approval.leader_role,
                )
            )
        else:
            items.append(
                Item("signoff", team, team.created_at, "Waiting for the leader's sign-off", "")
            )
    return items


def confirm_signoff(page: Page) -> Response:
    """The coach confirms a key contact's sign-off of their own unit: the team is enrolled."""
    assert page.user is not None
    team = team_for(page.db, page.user, page.int_param(page.request.path_params["team_id"]))
    with page.attempt() as errors:
        confirm_self_signoff(page.db, team=team, coach=page.user)
    page.flash(
        f"Not confirmed: {errors[0]}" if errors else f"{team.name} is enrolled: sign-off confirmed."
    )
    return redirect("/")


def primary_of(cohort: Cohort) -> Measure | None:
    """`dash.chartdata.primary_measure` from the cohort's loaded measures (position order)."""
    measures: list[Measure] = cohort.measures
    return next((m for m in measures if m.primary), measures[0] if measures else None)


def asked_and_baseline(cohort: Cohort) -> tuple[list[date], frozenset[date]]:
    """The cohort's asked days and its baseline days: the frame of every team's series."""
    curriculum = load_curriculum(cohort.topic)
    return asked_days(cohort, curriculum), frozenset(baseline_days(cohort, curriculum))


def series_signal(
    frame: tuple[list[date], frozenset[date]], today: date, by_day: dict[date, float | None]
) -> tuple[list[str], date | None]:
    """The run-chart rules that fire (shift, trend, runs) and the latest plotted day of the
    series `dash.chartdata.day_points` builds from these current values: the chart's own
    (tests/web/test_today.py checks the two agree)."""
    from dash.chartdata import day_points  # numpy: only when a list is built

    asked, baseline = frame
    points = day_points(asked, baseline, today, by_day)
    runs = points.analysis
    fired = [
        name
        for name, rule in (("shift", runs.shift), ("trend", runs.trend), ("runs", runs.runs_signal))
        if rule
    ]
    plotted = [
        day for day, value in zip(points.days, points.values, strict=True) if value is not None
    ]
    return fired, plotted[-1] if plotted else None


def new_signals(db: Session, teams: list[Team], now: datetime) -> list[Item]:
    """Teams whose primary run chart shows a signal that includes one of the last two days.

    The primary measure's values of every team come in one query; each series is analysed
    in memory exactly as the chart's own (`series_signal`)."""
    from dash.chartdata import measure_name

    primary = {team.id: primary_of(team.cohort) for team in teams}
    measure_ids = sorted({m.id for m in primary.values() if m is not None})
    by_team: dict[int, dict[date, float | None]] = {team.id: {} for team in teams}
    if measure_ids:
        for team_id, measure_id, day, numerator, denominator in _current_values(
            db, teams, MeasureValue.measure_id.in_(measure_ids)
        ):
            measure = primary[team_id]
            if measure is not None and measure.id == measure_id:
                by_team[team_id][day] = numerator / denominator if denominator else None
    frames = {team.cohort_id: asked_and_baseline(team.cohort) for team in teams}
    items = []
    for team in teams:
        measure = primary[team.id]
        if measure is None:
            continue
        today = local_date(now, team.cohort.timezone)
        fired, latest = series_signal(frames[team.cohort_id], today, by_team[team.id])
        if fired and latest is not None and latest >= today - timedelta(days=1):
            name = measure_name(measure, team.cohort.topic, "en")
            items.append(
                Item(
                    "signal",
                    team,
                    None,
                    f"Run chart signal on {name}",
                    "Non-random change (" + ", ".join(fired) + "): worth a word with the team.",
                )
            )
    return items


def needs_me(db: Session, user: Person, now: datetime | None = None) -> list[Item]:
    """Everything on the coach's plate, most urgent first (then oldest first).

    A constant number of queries whatever the number of teams (tests/web/test_today.py)."""
    now = now or utcnow()
    teams = enrolled_teams(db, user)
    items = [
        *waiting_threads(db, user),
        *stalled_enrolments(db, user),
        *missing_data(db, teams, now),
        *pending_signoffs(db, user),
        *plans_to_review(db, user),
        *new_signals(db, teams, now),
    ]
    return sorted(items, key=lambda item: item.sort_key)


def today_page(page: Page) -> Response:
    assert page.user is not None
    cohorts = visible_cohorts(page.db, page.user)
    items = needs_me(page.db, page.user)
    team_count = page.db.execute(
        limit_cohorts(select(func.count(Team.id)), page.user, Team.cohort_id)
    ).scalar_one()
    return page.render("today.html", items=items, cohorts=cohorts, team_count=team_count)
