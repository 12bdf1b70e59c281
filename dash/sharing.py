"""Shared learning by consent: the cohort board teams see, and the weekly story digest.

The white paper's learning systems share data and stories, and depend on freedom from fear
(QI-REFERENCE.md). So sharing is a team's choice (`team.consent_share`, set by
dash.actions.consent): a consenting team appears by name with its progress, signals, PDSA count
and the stories of the changes it adopted; a team that has not consented appears to the others
only inside anonymous counts – never its name, values or stories. A team always sees itself in
full. Free text shown to other teams goes through dash.privacy.mask_identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dash.chartdata import measure_series, primary_measure
from dash.links import link_url
from dash.models import (
    Aim,
    Cohort,
    Measure,
    MeasureValue,
    PdsaCycle,
    Team,
    TeamState,
)
from dash.privacy import mask_identifiers
from dash.settings import Settings
from dash.timeutil import local_date, local_to_utc

#: Teams that are part of a cohort's shared learning (not those still enrolling or declined).
BOARD_STATES = (TeamState.ENROLLED.value, TeamState.COMPLETED.value)


@dataclass(frozen=True)
class Progress:
    """Where a team stands on one aim: its latest value against the goal."""

    measure_name: str
    aim_text: str
    goal: float | None
    better: str
    latest: float | None
    latest_day: date | None
    signal: bool

    @property
    def goal_reached(self) -> bool | None:
        if self.goal is None or self.latest is None:
            return None
        return self.latest >= self.goal if self.better == "higher" else self.latest <= self.goal


@dataclass(frozen=True)
class AdoptedChange:
    """A change a team tested and decided to keep, with its one-line story."""

    cycle: int
    change: str
    story: str


@dataclass(frozen=True)
class SharedTeam:
    """A team shown by name: a consenting team, or the viewer itself."""

    team_id: int
    name: str
    is_viewer: bool
    consenting: bool
    progress: list[Progress]
    n_cycles: int
    adopted: list[AdoptedChange]

    @property
    def signal(self) -> bool:
        return any(p.signal for p in self.progress)


@dataclass(frozen=True)
class AnonymousCounts:
    """What other teams learn about the teams that did not consent: numbers only."""

    n_teams: int = 0
    n_reporting: int = 0
    n_cycles: int = 0


@dataclass(frozen=True)
class Board:
    """The cohort board as one team (or nobody in particular) may see it."""

    cohort_id: int
    cohort_name: str
    today: date
    viewer: SharedTeam | None
    shared: list[SharedTeam] = field(default_factory=list)
    anonymous: AnonymousCounts = field(default_factory=AnonymousCounts)


@dataclass(frozen=True)
class StoryItem:
    """One adopted change's story for the weekly digest."""

    team_id: int
    team_name: str
    cycle: int
    change: str
    story: str
    day: date


def _board_teams(session: Session, cohort_id: int) -> list[Team]:
    return list(
        session.execute(
            select(Team)
            .where(Team.cohort_id == cohort_id, Team.state.in_(BOARD_STATES))
            .order_by(Team.name, Team.id)
        ).scalars()
    )


def _cycle_count(session: Session, team_id: int) -> int:
    """PDSA cycles whose plan is complete (a plan still being typed is not a cycle yet)."""
    return session.execute(
        select(func.count(PdsaCycle.id)).where(
            PdsaCycle.team_id == team_id, PdsaCycle.state != "planning"
        )
    ).scalar_one()


def _adopted(session: Session, team_id: int) -> list[AdoptedChange]:
    cycles = session.execute(
        select(PdsaCycle)
        .where(PdsaCycle.team_id == team_id, PdsaCycle.act == "adopt")
        .order_by(PdsaCycle.number)
    ).scalars()
    return [
        AdoptedChange(
            cycle=c.number,
            change=mask_identifiers(c.change_text),
            story=mask_identifiers(c.story or ""),
        )
        for c in cycles
    ]


def _progress(session: Session, team: Team, today: date) -> list[Progress]:
    """One entry per aim of the team; the primary measure against its goal when it has none."""
    aims = list(
        session.execute(select(Aim).where(Aim.team_id == team.id).order_by(Aim.id)).scalars()
    )
    latest_aim: dict[int, Aim] = {}
    for aim in aims:  # a revised aim replaces the earlier one for the same measure
        latest_aim[aim.measure_id] = aim
    targets: list[tuple[Measure, Aim | None]] = [
        (session.get_one(Measure, measure_id), aim) for measure_id, aim in latest_aim.items()
    ]
    if not targets:
        measure = primary_measure(session, team.cohort_id)
        if measure is None:
            return []
        targets = [(measure, None)]
    result: list[Progress] = []
    for measure, aim in targets:
        series = measure_series(session, team, measure, today=today)
        latest = series.latest
        result.append(
            Progress(
                measure_name=series.measure_name,
                aim_text=mask_identifiers(aim.text) if aim is not None else "",
                goal=series.goal,
                better=series.better,
                latest=latest[1] if latest else None,
                latest_day=latest[0] if latest else None,
                signal=series.signal,
            )
        )
    return result


def _shared_team(session: Session, team: Team, *, is_viewer: bool, today: date) -> SharedTeam:
    return SharedTeam(
        team_id=team.id,
        name=team.name,
        is_viewer=is_viewer,
        consenting=team.consent_share,
        progress=_progress(session, team, today),
        n_cycles=_cycle_count(session, team.id),
        adopted=_adopted(session, team.id),
    )


def _reports(session: Session, team_id: int) -> bool:
    return (
        session.execute(
            select(MeasureValue.id)
            .where(MeasureValue.team_id == team_id, MeasureValue.is_current.is_(True))
            .limit(1)
        ).first()
        is not None
    )


def cohort_board(
    session: Session, cohort_id: int, *, viewer_team_id: int | None, today: date
) -> Board:
    """The cohort board as `viewer_team_id` may see it (None: a viewer outside the cohort).

    Consenting teams are named with their progress and stories; every other team (except the
    viewer, who always sees itself) is folded into anonymous counts.
    """
    cohort = session.get(Cohort, cohort_id)
    if cohort is None:
        raise LookupError(f"there is no cohort {cohort_id}")
    viewer: SharedTeam | None = None
    shared: list[SharedTeam] = []
    n_teams = n_reporting = n_cycles = 0
    for team in _board_teams(session, cohort_id):
        if team.id == viewer_team_id:
            viewer = _shared_team(session, team, is_viewer=True, today=today)
        elif team.consent_share:
            shared.append(_shared_team(session, team, is_viewer=False, today=today))
        else:
            n_teams += 1
            n_reporting += int(_reports(session, team.id))
            n_cycles += _cycle_count(session, team.id)
    return Board(
        cohort_id=cohort.id,
        cohort_name=cohort.name,
        today=today,
        viewer=viewer,
        shared=shared,
        anonymous=AnonymousCounts(n_teams=n_teams, n_reporting=n_reporting, n_cycles=n_cycles),
    )


def board_url(settings: Settings, secret: str, team_id: int) -> str:
    """The signed link to the cohort board as `team_id` sees it (served by dash.web.board)."""
    return link_url(settings.public_url, secret, "board", team_id)


# ---------------------------------------------------------------------------------------------
# Weekly story digest


def _story_day(cycle: PdsaCycle, tz: str) -> date:
    return local_date(cycle.story_shared_at or cycle.updated_at, tz)


def weekly_story_digest(session: Session, cohort_id: int, week_start: date) -> list[StoryItem]:
    """Stories of changes adopted by consenting teams, told in the week from `week_start`.

    A story belongs to the week it was shared (`story_shared_at`, else when the cycle was last
    changed), in the cohort's time zone. Teams that have not consented are never included.
    """
    cohort = session.get(Cohort, cohort_id)
    if cohort is None:
        raise LookupError(f"there is no cohort {cohort_id}")
    start = local_to_utc(week_start, time(0, 0), cohort.timezone)
    end = local_to_utc(week_start + timedelta(days=7), time(0, 0), cohort.timezone)
    when = func.coalesce(PdsaCycle.story_shared_at, PdsaCycle.updated_at)
    rows = session.execute(
        select(PdsaCycle, Team)
        .join(Team, Team.id == PdsaCycle.team_id)
        .where(
            Team.cohort_id == cohort_id,
            Team.state.in_(BOARD_STATES),
            Team.consent_share.is_(True),
            PdsaCycle.act == "adopt",
            PdsaCycle.story.is_not(None),
            PdsaCycle.story != "",
            when >= start,
            when < end,
        )
        .order_by(when, PdsaCycle.id)
    ).all()
    return [
        StoryItem(
            team_id=team.id,
            team_name=team.name,
            cycle=cycle.number,
            change=mask_identifiers(cycle.change_text),
            story=mask_identifiers(cycle.story or ""),
            day=_story_day(cycle, cohort.timezone),
        )
        for cycle, team in rows
    ]


__all__ = [
    "AdoptedChange",
    "AnonymousCounts",
    "Board",
    "Progress",
    "SharedTeam",
    "StoryItem",
    "board_url",
    "cohort_board",
    "weekly_story_digest",
]
