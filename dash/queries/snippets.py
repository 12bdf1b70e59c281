"""A coach's saved feedback snippets."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.models import FeedbackSnippet, Person


def coach_snippets(session: Session, coach: Person) -> list[FeedbackSnippet]:
    """The coach's snippets, by title."""
    return list(
        session.execute(
            select(FeedbackSnippet)
            .where(FeedbackSnippet.coach_id == coach.id)
            .order_by(FeedbackSnippet.title, FeedbackSnippet.id)
        ).scalars()
    )
