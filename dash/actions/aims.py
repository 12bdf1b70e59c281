"""The team's aim: how much, by when, for whom (Model for Improvement, question one)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.curriculum import load_curriculum
from dash.models import Aim, Measure, Team
from dash.schedule import last_day
from dash.texts import render


def set_initial_aim(session: Session, team: Team, lang: str = "en") -> Aim | None:
    """Write the team's aim from its curriculum's aim template for the primary measure.

    Called when a team is enrolled, so every team starts with an explicit aim a coach can
    refine; an existing aim is kept.
    """
    existing = session.execute(select(Aim.id).where(Aim.team_id == team.id)).first()
    if existing is not None:
        return None
    cohort = team.cohort
    curriculum = load_curriculum(cohort.topic)
    measure = (
        session.execute(
            select(Measure)
            .where(Measure.cohort_id == cohort.id)
            .order_by(Measure.primary.desc(), Measure.position)
        )
        .scalars()
        .first()
    )
    if measure is None or measure.goal is None:
        return None
    end = last_day(cohort, curriculum)
    text = curriculum.render_aim(
        lang,
        goal_pct=round(measure.goal * 100),
        measure_name=curriculum.measure(measure.key).name.get(lang),
        end_date=render("agenda_date_label", lang, day=end),
        unit_name=team.unit.name,
        baseline_pct=None,
    )
    aim = Aim(team_id=team.id, measure_id=measure.id, text=text, goal=measure.goal, target_date=end)
    session.add(aim)
    return aim
