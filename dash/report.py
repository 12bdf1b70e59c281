"""The cohort report: one self-contained, printable HTML file per cohort (`dash report`).

Written for faculty and leaders at the end of a Dash (or any day during it). It must open from
an e-mail attachment or a USB stick on a hospital PC with no network, so everything is inside
the file: inline CSS with print rules (a page per team), charts as inline SVG. Every value goes
through the autoescaping templates in dash/templates/web/report/; free text typed by teams is
masked with dash.privacy first, as everywhere a coach reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.actions.ratings import SCALE
from dash.chartdata import MeasureSeries, chart_data, measure_series
from dash.charts import run_chart
from dash.curriculum import CurriculumNotFound, load_curriculum
from dash.errors import UserError
from dash.metrics import TeamFigures, team_figures
from dash.models import (
    Aim,
    AssessmentRating,
    Cohort,
    Measure,
    PdsaCycle,
    Person,
    Team,
    TeamState,
)
from dash.privacy import mask_identifiers
from dash.texts import web_env
from dash.timeutil import local_date, to_local, utcnow

#: Teams that took part (a report does not list enrolments that never started).
REPORT_STATES = (TeamState.ENROLLED.value, TeamState.COMPLETED.value, TeamState.WITHDRAWN.value)


@dataclass(frozen=True)
class ChartBlock:
    """One measure of one team: its chart (inline SVG) or why there is none."""

    series: MeasureSeries
    svg: Markup | None


@dataclass(frozen=True)
class PdsaRow:
    number: int
    state: str
    change: str
    prediction: str
    who_where_when: str
    plan_measure: str
    test_date: date | None
    do_notes: str
    study_notes: str
    act: str | None
    act_notes: str
    story: str


@dataclass(frozen=True)
class RatingRow:
    day: date
    score: float
    label: str
    comment: str
    coach: str


@dataclass(frozen=True)
class TeamSection:
    team: Team
    organisation: str
    unit: str
    aims: list[Aim]
    charts: list[ChartBlock]
    pdsa: list[PdsaRow]
    figures: TeamFigures
    ratings: list[RatingRow]

    @property
    def latest_rating(self) -> RatingRow | None:
        return self.ratings[-1] if self.ratings else None


_SVG_START = re.compile(r"<svg\b", re.IGNORECASE)


def inline_svg(data: bytes) -> Markup:
    """An SVG document as markup for inlining in HTML (its XML prolog and doctype removed).

    The chart is our own matplotlib output whose text is escaped; a chart that somehow
    contains a script element is refused rather than trusted.
    """
    text = data.decode("utf-8")
    match = _SVG_START.search(text)
    if match is None:
        raise ValueError("chart is not an SVG document")
    svg = text[match.start() :]
    if re.search(r"<\s*script|\bon\w+\s*=", svg, re.IGNORECASE):
        raise ValueError("chart SVG contains script; refusing to inline it")
    return Markup(svg)  # noqa: S704 - our own chart, checked above


def _pdsa_rows(session: Session, team_id: int) -> list[PdsaRow]:
    cycles = session.execute(
        select(PdsaCycle).where(PdsaCycle.team_id == team_id).order_by(PdsaCycle.number)
    ).scalars()
    m = mask_identifiers
    return [
        PdsaRow(
            number=c.number,
            state=c.state,
            change=m(c.change_text),
            prediction=m(c.prediction),
            who_where_when=m(c.plan_who_where_when),
            plan_measure=m(c.plan_measure),
            test_date=c.test_date,
            do_notes=m(c.do_notes),
            study_notes=m(c.study_notes),
            act=c.act,
            act_notes=m(c.act_notes),
            story=m(c.story or ""),
        )
        for c in cycles
    ]


def _ratings(session: Session, team: Team) -> list[RatingRow]:
    rows = session.execute(
        select(AssessmentRating, Person.name)
        .outerjoin(Person, Person.id == AssessmentRating.rated_by_id)
        .where(AssessmentRating.team_id == team.id)
        .order_by(AssessmentRating.rated_at, AssessmentRating.id)
    ).all()
    return [
        RatingRow(
            day=to_local(r.rated_at, team.cohort.timezone).date(),
            score=r.score,
            label=SCALE.get(r.score, ""),
            comment=mask_identifiers(r.comment),
            coach=name or "",
        )
        for r, name in rows
    ]


def _team_section(
    session: Session, team: Team, measures: list[Measure], today: date
) -> TeamSection:
    charts: list[ChartBlock] = []
    for measure in measures:
        series = measure_series(session, team, measure, today=today)
        svg = None
        if series.has_data:
            svg = inline_svg(run_chart(chart_data(series, team.name), fmt="svg", size="page"))
        charts.append(ChartBlock(series=series, svg=svg))
    aims = list(
        session.execute(select(Aim).where(Aim.team_id == team.id).order_by(Aim.id)).scalars()
    )
    return TeamSection(
        team=team,
        organisation=team.unit.organisation.name,
        unit=team.unit.name,
        aims=aims,
        charts=charts,
        pdsa=_pdsa_rows(session, team.id),
        figures=team_figures(session, team, today),
        ratings=_ratings(session, team),
    )


def build_report(session: Session, cohort_id: int, *, today: date | None = None) -> str:
    """The report of cohort `cohort_id` as one HTML document (UserError if there is none)."""
    cohort = session.get(Cohort, cohort_id)
    if cohort is None:
        raise UserError(f"there is no cohort {cohort_id}")
    if today is None:
        today = local_date(utcnow(), cohort.timezone)
    measures = list(
        session.execute(
            select(Measure)
            .where(Measure.cohort_id == cohort.id)
            .order_by(Measure.primary.desc(), Measure.position)
        ).scalars()
    )
    teams = session.execute(
        select(Team)
        .where(Team.cohort_id == cohort.id, Team.state.in_(REPORT_STATES))
        .order_by(Team.name, Team.id)
    ).scalars()
    sections = [_team_section(session, team, measures, today) for team in teams]
    try:
        topic_title = load_curriculum(cohort.topic).title.render("en")
    except CurriculumNotFound:
        topic_title = cohort.topic
    template = web_env().get_template("report/cohort.html")
    return template.render(
        cohort=cohort,
        topic_title=topic_title,
        today=today,
        generated_at=to_local(utcnow(), cohort.timezone),
        sections=sections,
        scale=SCALE,
    )


def report_filename(cohort: Cohort, today: date) -> str:
    return f"cohort-{cohort.id}-report-{today.isoformat()}.html"


def write_report(
    session: Session, cohort_id: int, out_dir: str | Path, *, today: date | None = None
) -> Path:
    """Write the cohort's report into `out_dir` (created if needed); returns the file's path."""
    cohort = session.get(Cohort, cohort_id)
    if cohort is None:
        raise UserError(f"there is no cohort {cohort_id}")
    if today is None:
        today = local_date(utcnow(), cohort.timezone)
    html = build_report(session, cohort_id, today=today)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / report_filename(cohort, today)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the report to {folder}: {exc.strerror or exc}") from exc
    return path.resolve()


__all__ = ["build_report", "inline_svg", "report_filename", "write_report"]
