"""A coach acknowledging a team's PDSA plan, so it leaves the "to review" list."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from dash.models import PdsaCycle
from dash.timeutil import utcnow


def mark_pdsa_reviewed(
    session: Session, *, cycle: PdsaCycle, now: datetime | None = None
) -> PdsaCycle:
    """Mark `cycle` reviewed (once; a second click keeps the first time)."""
    if cycle.reviewed_at is None:
        cycle.reviewed_at = now or utcnow()
    session.flush()
    return cycle
