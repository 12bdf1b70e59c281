"""The morning coach digest reaches a coach at their account's e-mail when the deployment
sends e-mail, and stays a dashboard note when it does not."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from dash.actions.coaches import add_coach
from dash.models import AgendaItem
from scheduler.tick import dispatch
from tests.scheduler.test_agenda import make_cohort, make_team
from tests.scheduler.test_tick import ny, outbox

COACH_EMAIL = "ana.coach@example.org"
NO_ADDRESS = "the coach has no chat address; the dashboard shows the same"


def a_coach(ctx) -> int:
    with ctx.db.transaction() as s:
        cohort = make_cohort(s)
        make_team(s, cohort, name="5 West")
        return add_coach(s, email=COACH_EMAIL, name="Coach Ana", cohort_id=cohort.id).id


def digest_notes(ctx, coach_id: int) -> set[str | None]:
    with ctx.db.transaction() as s:
        return set(
            s.execute(
                select(AgendaItem.note).where(
                    AgendaItem.coach_id == coach_id, AgendaItem.state == "done"
                )
            ).scalars()
        )


def test_the_digest_goes_to_the_coach_email_when_email_is_enabled(ctx) -> None:
    coach_id = a_coach(ctx)
    ctx.channels = ("console", "email")  # a test-only e-mail channel: queued, never sent
    dispatch(ctx, ny(date(2026, 12, 9), 7, 30))
    with ctx.db.transaction() as s:
        sent = outbox(s, person_id=coach_id)
        assert [(o.channel, o.address) for o in sent] == [("email", COACH_EMAIL)]
        assert "5 West" in sent[0].message.text and "/cohorts/" in sent[0].message.text
    assert NO_ADDRESS not in digest_notes(ctx, coach_id)


def test_without_email_the_digest_stays_on_the_dashboard(ctx) -> None:
    coach_id = a_coach(ctx)
    dispatch(ctx, ny(date(2026, 12, 9), 7, 30))
    with ctx.db.transaction() as s:
        assert outbox(s, person_id=coach_id) == []
    assert NO_ADDRESS in digest_notes(ctx, coach_id)
