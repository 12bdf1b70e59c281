"""The weekly story digest goes out on schedule, once, with consenting teams' stories only."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from dash.models import AgendaItem, Message, PdsaCycle
from scheduler.tick import dispatch
from tests.support.teams import make_cohort, make_team

START = date(2026, 12, 7)  # a Monday; session 3 is Friday 11 December, in New York (UTC-5)


def _adopted(session, team, change: str, story: str) -> None:
    session.add(
        PdsaCycle(
            team_id=team.id,
            number=1,
            state="acted",
            change_text=change,
            act="adopt",
            story=story,
            test_date=date(2026, 12, 9),
            story_shared_at=datetime(2026, 12, 10, 15, tzinfo=UTC),
        )
    )


def test_week_one_stories_reach_every_team_after_session_three(ctx) -> None:
    with ctx.db.transaction() as s:
        cohort = make_cohort(s, start=START)
        sharing = make_team(s, cohort, name="5 West")
        sharing.consent_share = True
        private = make_team(s, cohort, name="ICU")
        _adopted(s, sharing, "POSS before every dose", "Sedation checks now take a minute.")
        _adopted(s, private, "Capnography", "A secret we keep to ourselves.")
        private_id = private.id

    before = dispatch(ctx, datetime(2026, 12, 10, 23, 30, tzinfo=UTC))
    assert "story_digest" not in before.by_kind
    after = dispatch(ctx, datetime(2026, 12, 12, 0, 30, tzinfo=UTC))  # Fri 19:30 in New York
    assert after.by_kind.get("story_digest") == 1
    again = dispatch(ctx, datetime(2026, 12, 12, 1, 0, tzinfo=UTC))
    assert "story_digest" not in again.by_kind

    with ctx.db.transaction() as s:
        digests = list(s.execute(select(Message).where(Message.kind == "stories")).scalars())
        assert digests, "no digest queued"
        assert {m.team_id for m in digests} >= {private_id}
        for message in digests:
            assert "Sedation checks now take a minute." in message.text
            assert "secret" not in message.text
            assert "/board/" in message.text  # each team gets its own signed board link
        row = (
            s.execute(
                select(AgendaItem)
                .where(AgendaItem.kind == "story_digest")
                .order_by(AgendaItem.due_at)
            )
            .scalars()
            .first()
        )
        assert row is not None and row.state == "done"
