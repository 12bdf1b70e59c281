"""A team's run-chart data, assembled once from the database for every place that shows it.

The CHART command, Telegram's sendPhoto, the team page, the board and the report all call
`team_chart` / `measure_chart` (or `measure_series` for the numbers), so a nurse, a coach and
the printed report see the same points, centre line, signals and PDSA annotations.

Rules (QI-REFERENCE.md, "Run charts"): one point per day of the Dash, missing days kept as None
so gaps stay visible; only current values (a correction replaces the old row); 0/0 days count as
reported but are not plotted; the centre is the median of the baseline days when the curriculum
has them and they carry data (frozen and extended, as in practice), else the median of all
points; signals come from dash.analytics.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.analytics import RunsAnalysis, SignalSummary, describe_signal, runs_analysis
from dash.charts import (
    ChartAnnotation,
    Fmt,
    RunChartData,
    Size,
    empty_chart,
    highlight_from,
    run_chart,
)
from dash.curriculum import CurriculumNotFound, load_curriculum
from dash.models import Aim, Cohort, Measure, MeasureValue, PdsaCycle, Team
from dash.privacy import mask_identifiers
from dash.schedule import asked_days, baseline_days
from dash.texts import language_of, render
from dash.timeutil import local_date, utcnow


@dataclass(frozen=True)
class PdsaMark:
    """A PDSA cycle tested on a day of the chart."""

    day: date
    number: int
    change: str


@dataclass(frozen=True)
class MeasureSeries:
    """The points of one team's measure, day by day, and what the run chart rules say."""

    team_id: int
    measure_id: int
    measure_key: str
    measure_name: str
    better: str
    goal: float | None
    days: list[date]
    values: list[float | None]
    baseline_days: int
    baseline_frozen: bool
    centre: float | None
    runs_signal: bool
    shift: bool
    trend: bool
    annotations: list[PdsaMark]
    analysis: RunsAnalysis

    @property
    def summary(self) -> SignalSummary:
        """The one signal worth telling about, and whether it goes the better way."""
        return describe_signal(self.analysis, "lower" if self.better == "lower" else "higher")

    @property
    def has_data(self) -> bool:
        return any(v is not None for v in self.values)

    @property
    def latest(self) -> tuple[date, float] | None:
        """The last day with a plotted value, and that value."""
        for day, value in zip(reversed(self.days), reversed(self.values), strict=True):
            if value is not None:
                return day, value
        return None

    @property
    def signal(self) -> bool:
        """Any run-chart rule fired: evidence of non-random change (not proof of improvement)."""
        return self.runs_signal or self.shift or self.trend


def measure_name(measure: Measure, topic: str, lang: str) -> str:
    """The measure's name in `lang` from the curriculum, else the stored English name."""
    try:
        return load_curriculum(topic).measure(measure.key).name.render(language_of(lang))
    except (CurriculumNotFound, KeyError):
        return measure.name


def primary_measure(session: Session, cohort_id: int) -> Measure | None:
    """The cohort's primary measure (the one the aim is about), else its first measure."""
    measures = list(
        session.execute(
            select(Measure).where(Measure.cohort_id == cohort_id).order_by(Measure.position)
        ).scalars()
    )
    for measure in measures:
        if measure.primary:
            return measure
    return measures[0] if measures else None


@dataclass(frozen=True)
class DayPoints:
    """One point per day and the run-chart rules' verdict on them: what `measure_series`, the
    coach's Today list and the team figures each build from a team's current values."""

    days: list[date]
    values: list[float | None]
    baseline_days: int
    baseline_frozen: bool
    analysis: RunsAnalysis


def day_points(
    asked: Sequence[date],
    baseline: Container[date],
    today: date,
    by_day: Mapping[date, float | None],
) -> DayPoints:
    """The series of current values `by_day` (None for 0/0) over the asked days up to `today`.

    One home for the chart's rules, so every caller judges a series alike: one point per day
    from the first asked day (or earlier data) to the last asked day up to today (or later
    data), None where nothing is reported; the centre frozen over the baseline days when they
    carry data (qicharts2's `freeze`), else the median of all points."""
    first, last = asked[0], min(asked[-1], today)
    if by_day:  # data outside the Dash (early baseline, sustain days) is still shown
        first = min(first, min(by_day))
        last = max(last, max(by_day))
    days = (
        [first + timedelta(days=i) for i in range((last - first).days + 1)] if last >= first else []
    )
    values = [by_day.get(day) for day in days]
    n_baseline = sum(1 for d in days if d in baseline)
    baseline_frozen = any(v is not None for v in values[:n_baseline])
    runs = runs_analysis(values, freeze=n_baseline if baseline_frozen else None)
    return DayPoints(days, values, n_baseline, baseline_frozen, runs)


def measure_series(
    session: Session,
    team: Team,
    measure: Measure,
    *,
    today: date | None = None,
    lang: str = "en",
) -> MeasureSeries:
    """The run-chart series of `team` for `measure` up to `today` (the unit's local date)."""
    cohort: Cohort = team.cohort
    if today is None:
        today = local_date(utcnow(), cohort.timezone)
    curriculum = load_curriculum(cohort.topic)
    asked = asked_days(cohort, curriculum)
    baseline = set(baseline_days(cohort, curriculum))
    rows = list(
        session.execute(
            select(MeasureValue).where(
                MeasureValue.team_id == team.id,
                MeasureValue.measure_id == measure.id,
                MeasureValue.is_current.is_(True),
            )
        ).scalars()
    )
    points = day_points(asked, baseline, today, {row.day: row.value for row in rows})
    runs = points.analysis

    aim = (
        session.execute(
            select(Aim)
            .where(Aim.team_id == team.id, Aim.measure_id == measure.id)
            .order_by(Aim.created_at.desc(), Aim.id.desc())
        )
        .scalars()
        .first()
    )
    cycles = session.execute(
        select(PdsaCycle)
        .where(PdsaCycle.team_id == team.id, PdsaCycle.test_date.is_not(None))
        .order_by(PdsaCycle.test_date, PdsaCycle.number)
    ).scalars()
    annotations = [
        PdsaMark(day=c.test_date, number=c.number, change=mask_identifiers(c.change_text))
        for c in cycles
        if c.test_date is not None
    ]
    return MeasureSeries(
        team_id=team.id,
        measure_id=measure.id,
        measure_key=measure.key,
        measure_name=measure_name(measure, cohort.topic, lang),
        better=measure.better,
        goal=aim.goal if aim is not None else measure.goal,
        days=points.days,
        values=points.values,
        baseline_days=points.baseline_days,
        baseline_frozen=points.baseline_frozen,
        centre=runs.centre,
        runs_signal=bool(runs.runs_signal),
        shift=bool(runs.shift),
        trend=bool(runs.trend),
        annotations=annotations,
        analysis=runs,
    )


def _label(lang: str, label: str, **context: object) -> str:
    base = {"measure_name": "", "team_name": "", "number": 0, "change": ""}
    return render("chart_label", lang, label=label, **{**base, **context})


def chart_data(series: MeasureSeries, team_name: str, lang: str = "en") -> RunChartData:
    """The RunChartData of a series: localised labels, the frozen baseline, signals, PDSA notes."""
    lang = language_of(lang)
    return RunChartData(
        title=_label(lang, "title", team_name=team_name, measure_name=series.measure_name),
        y_label=_label(lang, "y"),
        dates=series.days,
        values=series.values,
        percent=True,
        centre=series.centre,
        freeze=series.baseline_days if series.baseline_frozen else None,
        goal=series.goal,
        highlight=highlight_from(series.analysis),
        runs_signal=series.runs_signal,
        annotations=[
            ChartAnnotation(
                day=mark.day, label=_label(lang, "pdsa", number=mark.number, change=mark.change)
            )
            for mark in series.annotations
        ],
        better="lower" if series.better == "lower" else "higher",
        centre_label=_label(lang, "baseline_median" if series.baseline_frozen else "median"),
        goal_label=_label(lang, "goal"),
        better_label=_label(lang, "better"),
        weekday_names=_label(lang, "weekdays").split(","),
    )


def measure_chart(
    session: Session,
    team_id: int,
    measure_id: int,
    fmt: str = "png",
    size: str = "phone",
    lang: str = "en",
    *,
    today: date | None = None,
) -> bytes:
    """The run chart of one measure of a team as PNG or SVG bytes; a localised "no data yet"
    image when the team has not reported it (LookupError for an unknown team or measure)."""
    team = session.get(Team, team_id)
    measure = session.get(Measure, measure_id)
    if team is None or measure is None or measure.cohort_id != team.cohort_id:
        raise LookupError(f"team {team_id} has no measure {measure_id}")
    series = measure_series(session, team, measure, today=today, lang=lang)
    if not series.has_data:
        message = render("chart_no_data", language_of(lang), measure_name=series.measure_name)
        return empty_chart(message, fmt=_fmt(fmt), size=_size(size))
    return run_chart(chart_data(series, team.name, lang), fmt=_fmt(fmt), size=_size(size))


def team_chart(
    session: Session,
    team_id: int,
    fmt: str = "png",
    size: str = "phone",
    lang: str = "en",
    *,
    today: date | None = None,
) -> bytes:
    """The run chart of the team's primary measure (what CHART and sendPhoto show)."""
    team = session.get(Team, team_id)
    if team is None:
        raise LookupError(f"there is no team {team_id}")
    measure = primary_measure(session, team.cohort_id)
    if measure is None:
        message = render("chart_no_data", language_of(lang), measure_name=team.name)
        return empty_chart(message, fmt=_fmt(fmt), size=_size(size))
    return measure_chart(session, team_id, measure.id, fmt, size, lang, today=today)


def _fmt(fmt: str) -> Fmt:
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg', not {fmt!r}")
    return "png" if fmt == "png" else "svg"


def _size(size: str) -> Size:
    if size not in ("phone", "page"):
        raise ValueError(f"size must be 'phone' or 'page', not {size!r}")
    return "phone" if size == "phone" else "page"
