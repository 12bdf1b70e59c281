"""PDSA cycles (IHI QI Essentials PDSA worksheet): plan in four short questions, then Do,
Study and Act when the team reports back.

The conversation engine asks the questions; these functions hold the rules, so the
scheduler's follow-ups (start_plan after a session, ask_followup the day after a test) and
the web app change cycles the same way.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dash.actions.people import ask
from dash.curriculum import CurriculumNotFound, LocalText, load_curriculum
from dash.errors import UserError
from dash.models import PdsaCycle, PdsaState, Person, Team
from dash.parsing import fold, parse_day
from dash.queries.pdsa import OPEN_STATES, followup_person
from dash.texts import render
from dash.timeutil import local_date, utcnow

#: The plan questions, in order (Plan: objective and change, prediction, who/where/when, data).
PLAN_STEPS = ("change", "prediction", "who", "measure")
#: The follow-up questions after the test.
FOLLOWUP_STEPS = ("do", "study", "act")


def change_ideas(team: Team, lang: str) -> list[tuple[str, str]]:
    """(key, title) of the curriculum's change package, in order, in `lang`."""
    try:
        curriculum = load_curriculum(team.cohort.topic)
    except CurriculumNotFound:
        return []
    return [(c.key, c.title.render(lang)) for c in curriculum.change_package]


def example(team: Team, which: str, lang: str) -> str:
    """The curriculum's own example (`prediction` or `story`) in `lang`; "" when it has none."""
    try:
        examples = load_curriculum(team.cohort.topic).examples
    except CurriculumNotFound:
        return ""
    if examples is None:
        return ""
    text: LocalText = getattr(examples, which)
    return text.render(lang)


def start_plan(
    session: Session,
    team: Team,
    person: Person,
    via: str,
    *,
    previous: PdsaCycle | None = None,
) -> PdsaCycle:
    """A new cycle in 'planning' for `team`, with `person` asked the first plan question.

    A planning cycle `person` already started is resumed instead of starting another.
    With `previous` (an adapted cycle) the change is pre-filled from it.
    """
    existing = session.execute(
        select(PdsaCycle).where(
            PdsaCycle.team_id == team.id,
            PdsaCycle.state == PdsaState.PLANNING.value,
            PdsaCycle.created_by_id == person.id,
        )
    ).scalar_one_or_none()
    if existing is not None and previous is None:
        step = next_plan_step(existing)
        ask(session, person, "pdsa", step, team=team, data={"cycle_id": existing.id, "via": via})
        return existing
    number = (
        session.execute(
            select(func.max(PdsaCycle.number)).where(PdsaCycle.team_id == team.id)
        ).scalar_one()
        or 0
    ) + 1
    cycle = PdsaCycle(
        team_id=team.id,
        number=number,
        state=PdsaState.PLANNING.value,
        created_by_id=person.id,
        previous_id=previous.id if previous else None,
        change_key=previous.change_key if previous else None,
        change_text=previous.change_text if previous else "",
    )
    session.add(cycle)
    session.flush()
    ask(session, person, "pdsa", "change", team=team, data={"cycle_id": cycle.id, "via": via})
    return cycle


def next_plan_step(cycle: PdsaCycle) -> str:
    """The first plan question not answered yet."""
    if not cycle.change_text:
        return "change"
    if not cycle.prediction:
        return "prediction"
    if not cycle.plan_who_where_when:
        return "who"
    return "measure"


def set_change(session: Session, cycle: PdsaCycle, *, text: str, key: str | None = None) -> None:
    cycle.change_text = text.strip()
    cycle.change_key = key


def set_plan_answer(session: Session, cycle: PdsaCycle, step: str, text: str, today: date) -> bool:
    """Record the answer to plan question `step`; True when the plan is now complete."""
    answer = text.strip()
    if step == "prediction":
        cycle.prediction = answer
    elif step == "who":
        cycle.plan_who_where_when = answer
        cycle.test_date = test_day_in(answer, today)
    elif step == "measure":
        cycle.plan_measure = answer
        cycle.state = PdsaState.PLANNED.value
        return True
    else:
        raise UserError(f"unknown plan question {step!r}")
    return False


def test_day_in(text: str, today: date) -> date | None:
    """The day a who/where/when answer names ('tomorrow', 'fri', 'mañana'), if one."""
    for word in fold(text).replace(",", " ").replace(".", " ").split():
        if word in ("tomorrow", "manana"):
            return today + timedelta(days=1)
        day = parse_day(word, today)
        if day is not None:
            if word not in ("today", "hoy", "yesterday", "ayer") and day < today:
                day = day + timedelta(days=7)  # "fri" in a plan means the coming Friday
            return day
    return None


def followup_step(cycle: PdsaCycle) -> str:
    return {
        PdsaState.PLANNED.value: "do",
        PdsaState.DONE.value: "study",
        PdsaState.STUDIED.value: "act",
    }.get(cycle.state, "do")


def ask_followup(session: Session, cycle: PdsaCycle) -> str:
    """Ask how the test went: sets the pending question of the person who planned it and
    returns the question's text (the caller sends it where the team reads it)."""
    if cycle.state not in OPEN_STATES:
        raise UserError(f"cycle {cycle.number} is {cycle.state}; there is nothing to follow up")
    person = followup_person(session, cycle)
    team = session.get(Team, cycle.team_id)
    step = followup_step(cycle)
    lang = person.language if person is not None else "en"
    if person is not None and team is not None:
        ask(session, person, "pdsa_follow", step, team=team, data={"cycle_id": cycle.id})
    return followup_question(cycle, step, lang)[0]


def followup_question(cycle: PdsaCycle, step: str, lang: str) -> tuple[str, dict[str, Any]]:
    """(text, outbox payload) of follow-up question `step` about `cycle`."""
    payload: dict[str, Any] = {}
    if step == "act":
        payload["buttons"] = [
            [
                {"text": "Adopt", "data": "act:adopt"},
                {"text": "Adapt", "data": "act:adapt"},
                {"text": "Abandon", "data": "act:abandon"},
            ]
        ]
    text = render(
        f"pdsa_{step}_question",
        lang,
        number=cycle.number,
        change=cycle.change_text,
        prediction=cycle.prediction,
        do_notes=cycle.do_notes,
    )
    return text, payload


def record_do(session: Session, cycle: PdsaCycle, notes: str) -> None:
    """What happened when the change was tried (problems, surprises)."""
    if cycle.state != PdsaState.PLANNED.value:
        raise UserError(f"cycle {cycle.number} is {cycle.state}, not waiting for what happened")
    cycle.do_notes = notes.strip()
    cycle.state = PdsaState.DONE.value


def record_study(session: Session, cycle: PdsaCycle, notes: str) -> None:
    """How the result compares with the prediction."""
    if cycle.state != PdsaState.DONE.value:
        raise UserError(f"cycle {cycle.number} is {cycle.state}, not waiting for the study")
    cycle.study_notes = notes.strip()
    cycle.state = PdsaState.STUDIED.value


def record_act(session: Session, cycle: PdsaCycle, act: str, notes: str = "") -> None:
    """Adopt, adapt or abandon: the cycle is closed."""
    if act not in ("adopt", "adapt", "abandon"):
        raise UserError("the decision is adopt, adapt or abandon")
    if cycle.state != PdsaState.STUDIED.value:
        raise UserError(f"cycle {cycle.number} is {cycle.state}, not waiting for a decision")
    cycle.act = act
    cycle.act_notes = notes.strip()
    cycle.state = PdsaState.ACTED.value


def set_story(session: Session, cycle: PdsaCycle, story: str) -> None:
    """A one-line story of an adopted change; shared with the cohort only with consent."""
    cycle.story = story.strip()[:500]


def mark_story_shared(session: Session, cycle: PdsaCycle) -> None:
    team = session.get(Team, cycle.team_id)
    if team is None or not team.consent_share:
        raise UserError("the team has not agreed to share its stories")
    cycle.story_shared_at = utcnow()


def team_today(team: Team) -> date:
    return local_date(utcnow(), team.cohort.timezone)
