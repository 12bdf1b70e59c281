"""Queueing the weekly story digest: the stories a cohort's teams chose to share, to each team."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.actions.queueing import queue_to_team
from dash.models import Cohort, Message, Person, Priority, Team, TeamState
from dash.sharing import weekly_story_digest
from dash.texts import render


def queue_story_digest(
    session: Session,
    cohort: Cohort,
    week_start: date,
    *,
    board_link: Callable[[int], str] | None = None,
) -> list[Message]:
    """Queue the week's stories to every enrolled team of `cohort`, each reader in their language.

    Bulk priority, so replies go first. Dedupe key `stories:{cohort.id}:{week_start}` (suffixed per
    recipient exactly as queue_to_team does), so a scheduler restart cannot send it twice. A week
    without stories sends nothing.
    """
    items = weekly_story_digest(session, cohort.id, week_start)
    if not items:
        return []
    stories = [{"team_name": i.team_name, "change": i.change, "story": i.story} for i in items]
    base_key = f"stories:{cohort.id}:{week_start.isoformat()}"
    sent: list[Message] = []
    teams = session.execute(
        select(Team)
        .where(Team.cohort_id == cohort.id, Team.state == TeamState.ENROLLED.value)
        .order_by(Team.id)
    ).scalars()
    for team in teams:

        def digest(person: Person | None, lang: str, team: Team = team) -> str:
            return render(
                "story_digest",
                lang,
                recipient_name=(person.name if person else "") or team.name,
                cohort_name=cohort.name,
                week_start=week_start,
                stories=stories,
                board_link=board_link(team.id) if board_link else None,
            )

        sent += queue_to_team(
            session, team, digest, priority=Priority.BULK, kind="stories", dedupe_key=base_key
        )
    return sent
