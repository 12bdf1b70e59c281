"""Taking a team out of its cohort: it keeps its record, and nothing more is sent to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from dash.errors import UserError
from dash.models import AgendaItem, AgendaState, Team, TeamState
from dash.timeutil import utcnow

ENDED = (TeamState.WITHDRAWN.value, TeamState.COMPLETED.value)


def withdraw_team(session: Session, *, team: Team, now: datetime | None = None) -> int:
    """Mark `team` withdrawn and cancel its steps not yet sent; returns how many were cancelled.

    Its messages, data and PDSA cycles stay (they are the team's record and feed the report).
    """
    if team.state in ENDED:
        raise UserError(f"{team.name} is already {team.state}")
    now = now or utcnow()
    team.state = TeamState.WITHDRAWN.value
    team.ended_at = now
    result = session.execute(
        update(AgendaItem)
        .where(AgendaItem.team_id == team.id, AgendaItem.state == AgendaState.PENDING.value)
        .values(state=AgendaState.CANCELLED.value, note="team withdrawn", finished_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return int(result.rowcount or 0)
