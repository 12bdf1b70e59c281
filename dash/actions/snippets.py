"""A coach's saved feedback snippets: common replies, one click away on the team page."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dash.errors import UserError
from dash.models import FeedbackSnippet, Person

MAX_TITLE = 120
MAX_TEXT = 2000


def save_snippet(session: Session, *, coach: Person, title: str, text: str) -> FeedbackSnippet:
    """Save a snippet for `coach`; both a title and a text are needed to find and use it."""
    title, text = title.strip(), text.strip()
    if not title or not text:
        raise UserError("a snippet needs a title and a text")
    if len(title) > MAX_TITLE or len(text) > MAX_TEXT:
        raise UserError(f"keep titles under {MAX_TITLE} and texts under {MAX_TEXT} characters")
    snippet = FeedbackSnippet(coach_id=coach.id, title=title, text=text)
    session.add(snippet)
    session.flush()
    return snippet


def delete_snippet(session: Session, *, coach: Person, snippet_id: int) -> None:
    """Delete one of `coach`'s snippets; another coach's snippet is not theirs to delete."""
    snippet = session.get(FeedbackSnippet, snippet_id)
    if snippet is None or snippet.coach_id != coach.id:
        raise UserError("there is no such snippet")
    session.delete(snippet)
    session.flush()
