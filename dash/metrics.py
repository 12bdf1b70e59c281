"""A team's progress in figures: is data coming in, how fast, are tests running, is it working.

One definition for every place that shows them (coach digest, mid-point and final summaries,
the dashboard, the report), so a coach and a team never see two different "completeness".

- Days asked: the days a daily prompt covers (baseline days, then the Dash) that have passed in
  the unit's time zone; today counts once data for it arrived.
- A day with data: every measure of the cohort has a current value for it (0/0 counts: it is a
  reported day with no eligible patients).
- Time to answer: from the day's prompt time to the first value reported for it, per measure
  and day, in minutes (early answers count as 0).
- PDSA: cycles started = plans completed (state planned or later); finished = Act decided.
- Baseline and recent: pooled proportions (sum of numerators / sum of denominators) of the
  primary measure over the baseline days and over the last 7 days.
- Signal: the run-chart rules of dash.chartdata (IHI shift/trend and Anhøj runs) on the primary
  measure, the same series the chart shows.
"""

from __future__ import annotations

import functools
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dash.curriculum import Curriculum, load_curriculum
from dash.models import (
    Aim,
    Cohort,
    Measure,
    MeasureValue,
    Message,
    PdsaCycle,
    PdsaState,
    Team,
    TeamState,
)
from dash.schedule import asked_days, baseline_days
from dash.timeutil import local_to_utc

RECENT_DAYS = 7
"""The window of "recent" values in summaries: the last week."""

FINISHED_STATES = (PdsaState.ACTED.value,)
STARTED_STATES = (
    PdsaState.PLANNED.value,
    PdsaState.DONE.value,
    PdsaState.STUDIED.value,
    PdsaState.ACTED.value,
)


@dataclass(frozen=True)
class MeasureFigures:
    """One measure of one team."""

    measure_id: int
    key: str
    name: str
    better: str
    goal: float | None
    days_with_data: int
    latest_day: date | None
    latest_value: float | None
    baseline: float | None
    recent: float | None
    signal: bool | None
    signal_kind: str | None

    @property
    def meets_goal(self) -> bool | None:
        """Whether the latest value reaches the goal in the better direction (None: unknown)."""
        if self.latest_value is None or self.goal is None:
            return None
        if self.better == "higher":
            return self.latest_value >= self.goal
        return self.latest_value <= self.goal


@dataclass(frozen=True)
class TeamFigures:
    team_id: int
    team_name: str
    today: date
    days_asked: int
    days_with_data: int
    missed_days: int
    median_minutes_to_answer: float | None
    pdsa_started: int
    pdsa_finished: int
    pdsa_to_review: int
    waiting_messages: int
    measures: list[MeasureFigures]
    #: How many of the cohort's measures have a current value, per day that has any (the
    #: board's day cells).
    reported_per_day: dict[date, int] = field(default_factory=dict)

    @property
    def completeness(self) -> float | None:
        """Days with data / days asked (None before the first day was asked)."""
        return self.days_with_data / self.days_asked if self.days_asked else None

    @property
    def primary(self) -> MeasureFigures | None:
        return self.measures[0] if self.measures else None

    @property
    def latest_value(self) -> float | None:
        return self.primary.latest_value if self.primary else None

    @property
    def goal(self) -> float | None:
        return self.primary.goal if self.primary else None

    @property
    def signal(self) -> bool | None:
        return self.primary.signal if self.primary else None


def _pooled(rows: list[_Value]) -> float | None:
    denominator = sum(r.denominator for r in rows)
    return sum(r.numerator for r in rows) / denominator if denominator else None


class _Value(Protocol):
    """What the figures read of a measure value: an ORM row or a plain loaded tuple."""

    measure_id: int
    day: date
    numerator: int
    denominator: int
    is_current: bool
    reported_at: datetime

    @property
    def value(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class _LoadedValue:
    """A measure value read as plain columns (no ORM objects) for a whole cohort at once."""

    team_id: int
    measure_id: int
    day: date
    numerator: int
    denominator: int
    is_current: bool
    reported_at: datetime

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


_prompt_at = functools.lru_cache(maxsize=4096)(local_to_utc)
"""The UTC instant of a day's prompt: the same few days for every team of a cohort board."""

SignalOf = Callable[[Measure, list[_Value]], tuple[bool | None, str | None]]
"""The run-chart signal of one measure, given the team's current values of it."""


def _signal(session: Session, team: Team, measure: Measure, today: date) -> tuple[bool, str | None]:
    """Run-chart signal of the series the chart shows (dash.chartdata, dash.analytics)."""
    from dash.chartdata import measure_series

    series = measure_series(session, team, measure, today=today)
    return _signal_kind(series.shift, series.trend, series.runs_signal)


def _signal_kind(shift: object, trend: object, runs: object) -> tuple[bool, str | None]:
    kind = "shift" if shift else "trend" if trend else "runs" if runs else None
    return kind is not None, kind


def _in_memory_signal(cohort: Cohort, curriculum: Curriculum, today: date) -> SignalOf:
    """The signal of `dash.chartdata.measure_series`, computed from already loaded values by
    the same `dash.chartdata.day_points` (tests/analytics/test_metrics.py compares the two team by team).
    """
    try:
        from dash.chartdata import day_points
    except ImportError:  # the analytics package is not installed in this build
        return lambda measure, rows: (None, None)
    asked = asked_days(cohort, curriculum)
    baseline = frozenset(baseline_days(cohort, curriculum))

    def signal_of(measure: Measure, rows: list[_Value]) -> tuple[bool | None, str | None]:
        runs = day_points(asked, baseline, today, {row.day: row.value for row in rows}).analysis
        return _signal_kind(runs.shift, runs.trend, runs.runs_signal)

    return signal_of


@dataclass(frozen=True)
class _CohortFrame:
    """What every team of a cohort shares, read once per call rather than once per team:
    the asked and baseline days, each day's prompt instant, and the measures as plain values
    (reading ORM attributes in the per-value loops was a third of the board's row time)."""

    asked: list[date]
    baseline: frozenset[date]
    prompt_at: dict[date, datetime]
    measures: list[Measure]
    measure_ids: list[int]


def _frame(cohort: Cohort, curriculum: Curriculum, measures: list[Measure]) -> _CohortFrame:
    asked = asked_days(cohort, curriculum)
    prompt_time, tz = curriculum.schedule.daily_prompt_time, cohort.timezone
    return _CohortFrame(
        asked=asked,
        baseline=frozenset(baseline_days(cohort, curriculum)),
        prompt_at={day: _prompt_at(day, prompt_time, tz) for day in asked},
        measures=measures,
        measure_ids=[m.id for m in measures],
    )


def _figures(
    *,
    team_id: int,
    team_name: str,
    frame: _CohortFrame,
    values: Sequence[_Value],
    cycles: Sequence[tuple[str, datetime | None]],
    waiting: int,
    goal_of: dict[int, float | None],
    today: date,
    signal_of: SignalOf,
) -> TeamFigures:
    """The figures of one team from its loaded rows: the one computation both loaders share."""
    current = [v for v in values if v.is_current]
    measure_ids = frame.measure_ids
    wanted = set(measure_ids)
    # One current value per (measure, day) (a partial unique index), so this counts measures.
    per_day = Counter(v.day for v in current if v.measure_id in wanted)
    n_measures = len(measure_ids)

    def complete(day: date) -> bool:
        return n_measures > 0 and per_day.get(day, 0) == n_measures

    asked = [d for d in frame.asked if d < today or (d == today and complete(d))]
    with_data = [d for d in asked if complete(d)]
    missed = 0
    for day in reversed([d for d in asked if d < today]):
        if complete(day):
            break
        missed += 1

    first_report: dict[tuple[int, date], _Value] = {}
    for v in values:
        key = (v.measure_id, v.day)
        if key not in first_report or v.reported_at < first_report[key].reported_at:
            first_report[key] = v
    asked_set = set(asked)
    prompt_at = frame.prompt_at  # asked days are a subset of the frame's days
    delays = [
        max(0.0, (v.reported_at - prompt_at[day]).total_seconds()) / 60
        for (_, day), v in first_report.items()
        if day in asked_set
    ]

    baseline_set = frame.baseline
    recent_from = today - timedelta(days=RECENT_DAYS - 1)
    current_of: dict[int, list[_Value]] = {m: [] for m in measure_ids}
    for v in current:
        if v.measure_id in current_of:
            current_of[v.measure_id].append(v)
    figures: list[MeasureFigures] = []
    for measure, measure_id in zip(frame.measures, measure_ids, strict=True):
        rows = sorted(current_of[measure_id], key=lambda v: v.day)
        plotted = [v for v in rows if v.value is not None and v.day <= today]
        signal, kind = signal_of(measure, rows)
        figures.append(
            MeasureFigures(
                measure_id=measure_id,
                key=measure.key,
                name=measure.name,
                better=measure.better,
                goal=goal_of.get(measure_id, measure.goal),
                days_with_data=sum(1 for v in rows if v.day in asked_set),
                latest_day=plotted[-1].day if plotted else None,
                latest_value=plotted[-1].value if plotted else None,
                baseline=_pooled([v for v in rows if v.day in baseline_set]),
                recent=_pooled([v for v in rows if recent_from <= v.day <= today]),
                signal=signal,
                signal_kind=kind,
            )
        )
    return TeamFigures(
        team_id=team_id,
        team_name=team_name,
        today=today,
        days_asked=len(asked),
        days_with_data=len(with_data),
        missed_days=missed,
        median_minutes_to_answer=statistics.median(delays) if delays else None,
        pdsa_started=sum(1 for state, _ in cycles if state in STARTED_STATES),
        pdsa_finished=sum(1 for state, _ in cycles if state in FINISHED_STATES),
        pdsa_to_review=sum(
            1 for state, reviewed in cycles if state in STARTED_STATES and reviewed is None
        ),
        waiting_messages=waiting,
        measures=figures,
        reported_per_day=dict(per_day),
    )


def _measures(session: Session, cohort: Cohort) -> list[Measure]:
    """The cohort's measures, the primary one first."""
    return list(
        session.execute(
            select(Measure)
            .where(Measure.cohort_id == cohort.id)
            .order_by(Measure.primary.desc(), Measure.position)
        ).scalars()
    )


def team_figures(session: Session, team: Team, today: date) -> TeamFigures:
    """The figures of `team` as of the unit's local date `today` (queries for this team only)."""
    cohort = team.cohort
    values = list(
        session.execute(select(MeasureValue).where(MeasureValue.team_id == team.id)).scalars()
    )
    cycles = session.execute(
        select(PdsaCycle.state, PdsaCycle.reviewed_at).where(PdsaCycle.team_id == team.id)
    ).all()
    waiting = session.execute(
        select(func.count(Message.id)).where(
            Message.team_id == team.id, Message.direction == "in", Message.needs_reply.is_(True)
        )
    ).scalar_one()
    aims = session.execute(
        select(Aim).where(Aim.team_id == team.id).order_by(Aim.created_at, Aim.id)
    ).scalars()
    goal_of = {aim.measure_id: aim.goal for aim in aims}  # the latest aim wins

    def signal_of(measure: Measure, rows: list[_Value]) -> tuple[bool | None, str | None]:
        try:
            return _signal(session, team, measure, today)
        except ImportError:  # the analytics package is not installed in this build
            return None, None

    return _figures(
        team_id=team.id,
        team_name=team.name,
        frame=_frame(cohort, load_curriculum(cohort.topic), _measures(session, cohort)),
        values=values,
        cycles=[(state, reviewed) for state, reviewed in cycles],
        waiting=waiting,
        goal_of=goal_of,
        today=today,
        signal_of=signal_of,
    )


def teams_figures(
    session: Session,
    cohort: Cohort,
    teams: Iterable[Team],
    today: date,
    *,
    primary_signal_only: bool = False,
) -> dict[int, TeamFigures]:
    """The figures of `teams` (all of `cohort`) by team id, with one query per table.

    The same results as `team_figures` for each team, without its ~15 queries per team: the
    cohort board of 200 teams needs six queries instead of 3,000. With `primary_signal_only`
    the run-chart signal is computed for the primary measure only (the others say None,
    unknown): the board shows no other, and the runs analysis was a third of its CPU time.
    """
    teams = list(teams)
    if not teams:
        return {}
    if any(team.cohort_id != cohort.id for team in teams):
        raise ValueError(f"every team must belong to cohort {cohort.id}")
    wanted = {team.id for team in teams}
    in_cohort = select(Team.id).where(Team.cohort_id == cohort.id)

    values: dict[int, list[_Value]] = {team_id: [] for team_id in wanted}
    for row in session.execute(
        select(
            MeasureValue.team_id,
            MeasureValue.measure_id,
            MeasureValue.day,
            MeasureValue.numerator,
            MeasureValue.denominator,
            MeasureValue.is_current,
            MeasureValue.reported_at,
        ).where(MeasureValue.team_id.in_(in_cohort))
    ):
        if row.team_id in wanted:
            values[row.team_id].append(_LoadedValue(*row))

    cycles: dict[int, list[tuple[str, datetime | None]]] = {team_id: [] for team_id in wanted}
    for team_id, state, reviewed in session.execute(
        select(PdsaCycle.team_id, PdsaCycle.state, PdsaCycle.reviewed_at).where(
            PdsaCycle.team_id.in_(in_cohort)
        )
    ):
        if team_id in wanted:
            cycles[team_id].append((state, reviewed))

    waiting: dict[int, int] = {}
    for team_id, count in session.execute(
        select(Message.team_id, func.count(Message.id))
        .where(
            Message.team_id.in_(in_cohort),
            Message.direction == "in",
            Message.needs_reply.is_(True),
        )
        .group_by(Message.team_id)
    ):
        if team_id is not None:
            waiting[team_id] = count

    goals: dict[int, dict[int, float | None]] = {team_id: {} for team_id in wanted}
    for team_id, measure_id, goal in session.execute(
        select(Aim.team_id, Aim.measure_id, Aim.goal)
        .where(Aim.team_id.in_(in_cohort))
        .order_by(Aim.created_at, Aim.id)
    ):
        if team_id in wanted:
            goals[team_id][measure_id] = goal  # the latest aim wins

    curriculum = load_curriculum(cohort.topic)
    measures = _measures(session, cohort)
    every_signal = _in_memory_signal(cohort, curriculum, today)
    signal_of = every_signal
    if primary_signal_only and measures:
        primary_id = measures[0].id

        def primary_only(measure: Measure, rows: list[_Value]) -> tuple[bool | None, str | None]:
            return every_signal(measure, rows) if measure.id == primary_id else (None, None)

        signal_of = primary_only
    frame = _frame(cohort, curriculum, measures)
    return {
        team.id: _figures(
            team_id=team.id,
            team_name=team.name,
            frame=frame,
            values=values[team.id],
            cycles=cycles[team.id],
            waiting=waiting.get(team.id, 0),
            goal_of=goals[team.id],
            today=today,
            signal_of=signal_of,
        )
        for team in teams
    }


def cohort_figures(session: Session, cohort: Cohort, today: date) -> list[TeamFigures]:
    """Figures of every enrolled or completed team of `cohort`, by team name."""
    teams = list(
        session.execute(
            select(Team)
            .where(
                Team.cohort_id == cohort.id,
                Team.state.in_((TeamState.ENROLLED.value, TeamState.COMPLETED.value)),
            )
            .order_by(Team.name, Team.id)
        ).scalars()
    )
    figures = teams_figures(session, cohort, teams, today)
    return [figures[team.id] for team in teams]
