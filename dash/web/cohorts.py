"""The cohort board: teams × days of data, progress and contact at a glance; CSV exports."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from markupsafe import Markup, escape
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.responses import Response

from dash.exports import COLUMNS, write_export
from dash.metrics import teams_figures
from dash.models import AssessmentRating, Cohort, Message, Team
from dash.models.teams import TeamState
from dash.timeutil import local_date, utcnow
from dash.web.access import cohort_for
from dash.web.pages import Page, day_label

DASH_DAYS = 14
ACTIVE = (TeamState.AWAITING_MATRIX, TeamState.AWAITING_SIGNOFF, TeamState.ENROLLED)
SORTS = ("name", "completeness", "latest", "score", "contact")


@dataclass
class Cell:
    day: date
    status: str  # "full", "partial", "none", "future"
    reported: int
    expected: int


def cells_markup(cells: list[Cell], built: dict[tuple[date, str, int, int], str]) -> Markup:
    """A row's day cells as HTML, built here rather than in the template.

    Why: the board has teams × 14 cells, and a Jinja loop with two date filters and three
    escapes per cell was most of the page's rendering time. A cell's markup depends only on
    (day, status, reported, expected), so each distinct cell is built once per page (`built`,
    shared by the rows) and the rows join the strings. Every value is escaped (dates and
    numbers only; no user text reaches a cell).
    """
    parts = []
    for c in cells:
        key = (c.day, c.status, c.reported, c.expected)
        html = built.get(key)
        if html is None:
            label, status = escape(day_label(c.day)), escape(c.status)
            html = built[key] = (
                f'<td class="cell {status}" title="{label}: {c.reported:d} of {c.expected:d}'
                f' measures"><span class="sr-only">{label}: {status}</span></td>'
            )
        parts.append(html)
    return Markup("".join(parts))  # noqa: S704 - every part escaped above


@dataclass
class Row:
    team: Team
    cells: list[Cell] = field(default_factory=list)
    cells_html: Markup = field(default_factory=Markup)
    completeness: float | None = None
    latest: float | None = None
    latest_day: date | None = None
    goal: float | None = None
    better: str = "higher"
    signal: bool = False
    pdsa: int = 0
    pdsa_finished: int = 0
    signal_kind: str | None = None
    score: float | None = None
    last_contact: datetime | None = None
    waiting: int = 0

    @property
    def goal_met(self) -> bool | None:
        if self.latest is None or self.goal is None:
            return None
        return self.latest >= self.goal if self.better == "higher" else self.latest <= self.goal

    @property
    def needs_attention(self) -> bool:
        recent = [c for c in self.cells if c.status != "future"][-2:-1]
        return self.waiting > 0 or any(c.status != "full" for c in recent)


def dash_dates(cohort: Cohort) -> list[date]:
    return [cohort.start_date + timedelta(days=i) for i in range(DASH_DAYS)]


def build_rows(
    db: Session, cohort: Cohort, teams: list[Team], days: list[date], today: date
) -> list[Row]:
    """The board's rows, with one query per table for the whole cohort (not per team)."""
    if not teams:
        return []
    in_cohort = select(Team.id).where(Team.cohort_id == cohort.id)
    figures = teams_figures(db, cohort, teams, today, primary_signal_only=True)
    scores: dict[int, float] = {}
    for rating in db.execute(
        select(AssessmentRating)
        .where(AssessmentRating.team_id.in_(in_cohort))
        .order_by(AssessmentRating.rated_at, AssessmentRating.id)
    ).scalars():
        scores[rating.team_id] = rating.score  # the latest rating wins
    contact: dict[int, tuple[datetime | None, int]] = {
        team_id: (last, int(waiting or 0))
        for team_id, last, waiting in db.execute(
            select(
                Message.team_id,
                func.max(case((Message.direction == "in", Message.created_at))),
                func.sum(case((Message.needs_reply.is_(True), 1), else_=0)),
            )
            .where(Message.team_id.in_(in_cohort))
            .group_by(Message.team_id)
        )
    }
    expected = len(cohort.measures)
    built_cells: dict[tuple[date, str, int, int], str] = {}
    rows = []
    for team in teams:
        team_id = team.id  # an ORM attribute read: once per row, not once per cell
        team_figures = figures[team_id]
        reported = team_figures.reported_per_day  # from the values teams_figures loaded
        row = Row(team=team)
        for day in days:
            got = reported.get(day, 0)
            if day > today:
                status = "future"
            elif expected and got >= expected:
                status = "full"
            elif got:
                status = "partial"
            else:
                status = "none"
            row.cells.append(Cell(day, status, got, expected))
        row.cells_html = cells_markup(row.cells, built_cells)
        row.completeness = team_figures.completeness
        row.pdsa, row.pdsa_finished = team_figures.pdsa_started, team_figures.pdsa_finished
        primary = team_figures.primary
        if primary is not None:
            row.latest, row.latest_day, row.goal = (
                primary.latest_value,
                primary.latest_day,
                primary.goal,
            )
            row.better, row.signal, row.signal_kind = (
                primary.better,
                bool(primary.signal),
                primary.signal_kind,
            )
        row.score = scores.get(team_id)
        row.last_contact, row.waiting = contact.get(team_id, (None, 0))
        rows.append(row)
    return rows


def sort_rows(rows: list[Row], sort: str) -> list[Row]:
    def missing_last(value: float | None) -> tuple[bool, float]:
        return value is None, -(value or 0.0)

    if sort == "completeness":
        return sorted(rows, key=lambda r: missing_last(r.completeness))
    if sort == "latest":
        return sorted(rows, key=lambda r: missing_last(r.latest))
    if sort == "score":
        return sorted(rows, key=lambda r: missing_last(r.score))
    if sort == "contact":
        return sorted(
            rows, key=lambda r: (r.last_contact is None, -(r.last_contact or utcnow()).timestamp())
        )
    return sorted(rows, key=lambda r: r.team.name.lower())


def cohort_page(page: Page) -> Response:
    assert page.user is not None
    cohort = cohort_for(page.db, page.user, page.int_param(page.request.path_params["cohort_id"]))
    params = page.request.query_params
    show = params.get("show", "active")
    sort = params.get("sort", "name") if params.get("sort") in SORTS else "name"
    query_text = params.get("q", "").strip()
    attention = params.get("attention") == "1"

    query = select(Team).where(Team.cohort_id == cohort.id)
    if show == "active":
        query = query.where(Team.state.in_([s.value for s in ACTIVE]))
    elif show in {s.value for s in TeamState}:
        query = query.where(Team.state == show)
    teams = list(page.db.execute(query).scalars())
    if query_text:
        teams = [t for t in teams if query_text.lower() in t.name.lower()]
    today = local_date(utcnow(), cohort.timezone)
    days = dash_dates(cohort)
    rows = build_rows(page.db, cohort, teams, days, today)
    if attention:
        rows = [r for r in rows if r.needs_attention]
    return page.render(
        "cohort.html",
        cohort=cohort,
        rows=sort_rows(rows, sort),
        days=days,
        today=today,
        show=show,
        sort=sort,
        q=query_text,
        attention=attention,
        sorts=SORTS,
        states=[s.value for s in TeamState],
        exports=list(COLUMNS),
    )


def cohort_export(page: Page) -> Response:
    """The CONTRACT.md CSV (same as `dash export`), for the coach's own cohorts only."""
    assert page.user is not None
    cohort = cohort_for(page.db, page.user, page.int_param(page.request.path_params["cohort_id"]))
    what = page.request.path_params["what"]
    if what not in COLUMNS:
        raise HTTPException(404)
    out = io.StringIO()
    write_export(page.db, cohort.id, what, out)
    filename = f"cohort-{cohort.id}-{what}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
