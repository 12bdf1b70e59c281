"""The web pages a leader and a coach open, judged by what they have to type or find."""

from __future__ import annotations

from sqlalchemy import select

from dash.links import make_token
from dash.models import Team
from tests.support import web as w
from tests.support.engine import KC, LEADER, Chat, make_cohort


def test_the_sign_off_page_already_knows_the_role_the_key_contact_gave(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    chat.say(KC, f"JOIN {cohort.enrolment_code}")
    for answer in ("Maria Lopez", "St Mary's Hospital", "5 West", "5", "4", "3", "4", "5"):
        chat.say(KC, answer)
    chat.say(KC, "Ana Ruiz, Chief Nursing Officer")
    chat.say(KC, LEADER)
    with ctx.db.transaction() as s:
        team_id = s.execute(select(Team.id)).scalar_one()
    page = w.client_for(ctx).get("/signoff/" + make_token(ctx.secret, "signoff", team_id))
    assert page.status_code == 200
    assert (
        'name="role" required autocomplete="organization-title" value="Chief Nursing Officer"'
        in (page.text)
    )
    assert 'value="Ana Ruiz"' in page.text
