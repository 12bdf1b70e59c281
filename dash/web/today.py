"""Today: what needs this coach now, most urgent first, each item linking to its team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from dash.models import Measure, MeasureValue, Message, PdsaCycle, PdsaState, Person, Team
from dash.models.teams import TeamState
from dash.privacy import mask_identifiers
from dash.timeutil import local_date, utcnow
from dash.web.access import limit_cohorts, visible_cohorts
from dash.web.pages import Page

DASH_DAYS = 14

# Lower is more urgent: a person waiting beats a missing number beats paperwork.
RANK = {"thread": 0, "missing": 1, "signoff": 2, "plan": 3, "signal": 4, "missing_today": 5}


@dataclass
class Item:
    kind: str
    team: Team
    since: datetime | None
    summary: str
    detail: str = ""

    @property
    def sort_key(self) -> tuple[int, datetime]:
        return RANK[self.kind], self.since or datetime.max.replace(tzinfo=utcnow().tzinfo)


def enrolled_teams(db: Session, user: Person) -> list[Team]:
    query = select(Team).where(Team.state == TeamState.ENROLLED.value).order_by(Team.name)
    return list(db.execute(limit_cohorts(query, user, Team.cohort_id)).scalars())


def waiting_threads(db: Session, user: Person) -> list[Item]:
    """One item per team with messages waiting for a coach: since the oldest, with a preview."""
    query = (
        select(Message)
        .join(Team, Team.id == Message.team_id)
        .where(Message.needs_reply.is_(True))
        .order_by(Message.created_at, Message.id)
    )
    items: dict[int, Item] = {}
    counts: dict[int, int] = {}
    for message in db.execute(limit_cohorts(query, user, Team.cohort_id)).scalars():
        assert message.team_id is not None
        counts[message.team_id] = counts.get(message.team_id, 0) + 1
        if message.team_id not in items:
            team = db.get(Team, message.team_id)
            assert team is not None
            items[message.team_id] = Item(
                "thread", team, message.created_at, "", mask_identifiers(message.text)[:160]
            )
    for team_id, item in items.items():
        n = counts[team_id]
        item.summary = f"{n} message{'s' if n != 1 else ''} waiting for your reply"
    return list(items.values())


def dash_days(team: Team, today: date) -> list[date]:
    """Yesterday and today, where they fall inside the team's two weeks."""
    start = team.cohort.start_date
    end = start + timedelta(days=DASH_DAYS - 1)
    return [d for d in (today - timedelta(days=1), today) if start <= d <= end]


def missing_data(db: Session, teams: list[Team], now: datetime) -> list[Item]:
    """Measures with no value for yesterday (urgent) or today (not over yet) in the unit's zone."""
    items: list[Item] = []
    for team in teams:
        today = local_date(now, team.cohort.timezone)
        measures: list[Measure] = team.cohort.measures
        for day in dash_days(team, today):
            have = set(
                db.execute(
                    select(MeasureValue.measure_id).where(
                        MeasureValue.team_id == team.id,
                        MeasureValue.day == day,
                        MeasureValue.is_current.is_(True),
                    )
                ).scalars()
            )
            missing = [m.name for m in measures if m.id not in have]
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
        select(PdsaCycle)
        .join(Team, Team.id == PdsaCycle.team_id)
        .where(PdsaCycle.reviewed_at.is_(None), PdsaCycle.state != PdsaState.PLANNING.value)
        .order_by(PdsaCycle.updated_at)
    )
    items = []
    for cycle in db.execute(limit_cohorts(query, user, Team.cohort_id)).scalars():
        team = db.get(Team, cycle.team_id)
        assert team is not None
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
    query = select(Team).where(Team.state == TeamState.AWAITING_SIGNOFF.value)
    items = []
    for team in db.execute(limit_cohorts(query, user, Team.cohort_id)).scalars():
        items.append(
            Item("signoff", team, team.created_at, "Waiting for the leader's sign-off", "")
        )
    return items


def new_signals(db: Session, teams: list[Team], now: datetime) -> list[Item]:
    """Teams whose primary run chart shows a signal that includes one of the last two days."""
    from dash.chartdata import measure_series, primary_measure

    items = []
    for team in teams:
        measure = primary_measure(db, team.cohort_id)
        if measure is None:
            continue
        today = local_date(now, team.cohort.timezone)
        series = measure_series(db, team, measure, today=today)
        latest = series.latest
        if series.signal and latest is not None and latest[0] >= today - timedelta(days=1):
            rules = [
                name
                for name, fired in (
                    ("shift", series.shift),
                    ("trend", series.trend),
                    ("runs", series.runs_signal),
                )
                if fired
            ]
            items.append(
                Item(
                    "signal",
                    team,
                    None,
                    f"Run chart signal on {series.measure_name}",
                    "Non-random change (" + ", ".join(rules) + "): worth a word with the team.",
                )
            )
    return items


def needs_me(db: Session, user: Person, now: datetime | None = None) -> list[Item]:
    """Everything on the coach's plate, most urgent first (then oldest first)."""
    now = now or utcnow()
    teams = enrolled_teams(db, user)
    items = [
        *waiting_threads(db, user),
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
