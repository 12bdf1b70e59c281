"""A team's choice to share its data and stories with the cohort (a condition of the Dash's
learning system, but always the team's choice): the current value plus its history."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dash.models import ConsentChange, Person, Team


def set_consent(
    session: Session, *, team: Team, shared: bool, by: Person | None, via: str
) -> ConsentChange | None:
    """Set whether `team` shares with the cohort; None (no history row) when unchanged."""
    if team.consent_share == shared:
        return None
    team.consent_share = shared
    change = ConsentChange(
        team_id=team.id, shared=shared, changed_by_id=by.id if by else None, via=via
    )
    session.add(change)
    session.flush()
    return change
