"""Enrolment by chat: key contact, priority matrix, the leader's sign-off; members joining."""

from __future__ import annotations

from sqlalchemy import func, select

from dash.actions.enrolment import record_signoff, signoff_url
from dash.links import read_token
from dash.models import AgendaItem, MeasureValue, Membership, Person, PriorityMatrix, SignOff, Team
from tests.support.engine import KC, LEADER, Chat, enrol, make_cohort
from tests.support.people import address_on


def _team(ctx) -> Team:
    with ctx.db.transaction() as s:
        team = s.execute(select(Team)).scalar_one()
        s.expunge(team)
        return team


def test_enrolment_with_the_leaders_yes(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    assert "What is your name?" in chat.say(KC, f"join {cohort.enrolment_code.lower()}")
    assert "organisation" in chat.say(KC, "Maria Lopez")
    assert "which unit" in chat.say(KC, "St Mary's Hospital")
    first = chat.replies(KC)
    chat.send(KC, "5 West")
    question = chat.replies(KC)[-1]
    assert first == [] and "1/5 Importance" in question.text and "Reply 1-5" in question.text
    assert question.payload["buttons"][0][3] == {"text": "4", "data": "score:importance:4"}
    # A button press (Telegram) and digits (SMS) both work.
    chat.send(KC, "5", callback_data="score:importance:5")
    assert "2/5" in chat.text(KC)
    for score in ("4", "3", "4"):
        chat.say(KC, score)
    done = chat.say(KC, "5")
    assert "Total: 21 of 25" in done and "Who is the leader" in done
    assert _team(ctx).state == "awaiting_signoff"
    chat.say(KC, "Ana Ruiz, Chief Nursing Officer")
    told = chat.say(KC, LEADER)
    assert "I have asked Ana Ruiz" in told and "/signoff/" in told

    request = chat.replies(LEADER)
    assert len(request) == 1
    assert "Maria Lopez asks you to sign off 5 West, St Mary's Hospital" in request[0].text
    assert "Importance: 5" in request[0].text and "Reply YES" in request[0].text
    assert request[0].payload["buttons"][0][0]["data"] == "signoff:yes"
    # The web link in the request is a valid signed sign-off link for this team.
    token = request[0].text.split("/signoff/")[1].split()[0]
    assert read_token(ctx.secret, "signoff", token, 3600).subject == _team(ctx).id
    # Nothing is scheduled before sign-off.
    with ctx.db.transaction() as s:
        assert s.execute(select(func.count(AgendaItem.id))).scalar_one() == 0

    assert "is enrolled" in chat.say(LEADER, "yes, go ahead")
    team = _team(ctx)
    assert team.state == "enrolled" and team.join_code
    approved = chat.text(KC)
    assert f"Your team code is {team.join_code}" in approved and "go ahead" in approved
    with ctx.db.transaction() as s:
        signoff = s.execute(select(SignOff)).scalar_one()
        assert (signoff.decision, signoff.leader_name, signoff.leader_role) == (
            "approved",
            "Ana Ruiz",
            "Chief Nursing Officer",
        )
        assert signoff.comment == "go ahead" and signoff.via == "console"
        roles = set(s.execute(select(Membership.role)).scalars())
        assert roles == {"key_contact", "data_reporter", "leader"}


def test_leader_says_no_and_the_key_contact_revises(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    for line in (
        f"JOIN {cohort.enrolment_code}",
        "Maria",
        "St Mary's",
        "5 West",
        "2",
        "2",
        "2",
        "2",
        "2",
    ):
        chat.say(KC, line)
    chat.say(KC, "Ana Ruiz, CNO")
    chat.say(KC, LEADER)
    chat.text(LEADER)
    assert "Thank you: I have told Maria" in chat.say(LEADER, "NO - not a priority this quarter")
    declined = chat.text(KC)
    assert "did not approve" in declined and "not a priority this quarter" in declined
    assert "REVISE" in declined
    assert _team(ctx).state == "declined"

    assert "1/5" in chat.say(KC, "REVISE")
    for score in ("5", "5", "4", "4"):
        chat.say(KC, score)
    resent = chat.say(KC, "5")
    assert "Revision 2" in resent and "sent it to Ana Ruiz" in resent
    second = chat.text(LEADER)
    assert "Total: 23 of 25" in second
    chat.say(LEADER, "YES")
    assert _team(ctx).state == "enrolled"
    with ctx.db.transaction() as s:
        assert s.execute(select(func.count(PriorityMatrix.id))).scalar_one() == 2
        decisions = [
            (d.decision, d.matrix_id)
            for d in s.execute(select(SignOff).order_by(SignOff.id)).scalars()
        ]
        latest = (
            s.execute(select(PriorityMatrix.id).order_by(PriorityMatrix.revision.desc()))
            .scalars()
            .first()
        )
    assert decisions[0][0] == "declined" and decisions[1] == ("approved", latest)


def test_key_contact_who_is_the_leader_signs_off_themselves(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    for line in (
        f"JOIN {cohort.enrolment_code}",
        "Maria",
        "St Mary's",
        "5 West",
        "3",
        "3",
        "3",
        "3",
        "3",
    ):
        chat.say(KC, line)
    chat.say(KC, "Maria Lopez, Nurse Manager")
    request = chat.say(KC, "me")
    assert "Reply YES" in request
    # Approving one's own unit is not a leader's sign-off: a coach confirms it first.
    waiting = chat.say(KC, "YES")
    assert "a coach will confirm" in waiting and "team code" in waiting
    assert _team(ctx).state == "awaiting_signoff"
    _coach_confirms(ctx)
    assert _team(ctx).state == "enrolled"
    assert "You are enrolled!" in chat.text(KC)


def _coach_confirms(ctx) -> None:
    """What the coach's confirm button on Today does (tests/web/test_today_signoff.py)."""
    from dash.actions.coaches import add_coach
    from dash.actions.enrolment import confirm_self_signoff

    team_id = _team(ctx).id
    with ctx.db.transaction() as s:
        coach = add_coach(s, email="coach@example.org", name="Coach", password="x" * 16)
        confirm_self_signoff(s, team=s.get(Team, team_id), coach=coach)


def test_signoff_by_web_link_follows_the_same_rules(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    for line in (
        f"JOIN {cohort.enrolment_code}",
        "Maria",
        "St Mary's",
        "5 West",
        "3",
        "3",
        "3",
        "3",
        "3",
    ):
        chat.say(KC, line)
    chat.say(KC, "Ana Ruiz, CNO")
    chat.say(KC, LEADER)
    team = _team(ctx)
    url = signoff_url(ctx, ctx.secret, team)
    assert read_token(ctx.secret, "signoff", url.rsplit("/", 1)[1], 60).subject == team.id
    with ctx.db.transaction() as s:
        record_signoff(
            s,
            team=s.get(Team, team.id),
            decision="approved",
            leader_name="Ana Ruiz",
            leader_role="CNO",
            comment="",
            via="web",
            leader=None,
        )
    assert "Your team code is" in chat.text(KC)
    # The leader's pending YES/NO is void now: a later YES is not a second sign-off.
    chat.say(LEADER, "YES")
    with ctx.db.transaction() as s:
        assert s.execute(select(func.count(SignOff.id))).scalar_one() == 1


def test_members_join_with_the_team_code(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    nurse = "+15551230003"
    joined = chat.say(nurse, f"JOIN {team.join_code}")
    assert "Welcome to 5 West" in joined and "What name" in joined
    assert "Thank you, Sam Lee" in chat.say(nurse, "Sam Lee")
    assert "already in" in chat.say(nurse, f"join {team.join_code}")
    other = "+15551230004"
    chat.say(other, f"JOIN {team.join_code}")
    with ctx.db.transaction() as s:
        roles = {
            (address_on(m.person, "console"), m.role)
            for m in s.execute(select(Membership).where(Membership.team_id == team.id)).scalars()
        }
    # The first member after the key contact also reports data; later ones are members.
    assert (nurse, "data_reporter") in roles and (nurse, "member") in roles
    assert (other, "member") in roles and (other, "data_reporter") not in roles


def test_unknown_codes_and_unknown_senders(ctx) -> None:
    chat = Chat(ctx)
    make_cohort(ctx)
    assert "JOIN and the team code" in chat.say("+15559990000", "hello there")
    assert "don't know the code ZZZZ99" in chat.say("+15559990000", "JOIN zzzz99")
    assert "JOIN followed by your code" in chat.say("+15559990000", "JOIN")


def test_a_telegram_group_is_linked_and_members_answer_in_it(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    group = "-1001234"
    linked = chat.say(
        group,
        f"JOIN {team.join_code}",
        channel="telegram",
        sender="501",
        is_group=True,
        sender_name="Sam Lee",
    )
    assert "This group is now 5 West" in linked
    with ctx.db.transaction() as s:
        assert (s.get(Team, team.id).group_channel, s.get(Team, team.id).group_address) == (
            "telegram",
            group,
        )
    # Another member writes in the group: attributed to them, answered in the group.
    reply = chat.say(
        group, "4/5", channel="telegram", sender="502", is_group=True, sender_name="Kim"
    )
    assert "4/5 = 80%" in reply
    with ctx.db.transaction() as s:
        value = s.execute(select(MeasureValue)).scalar_one()
        assert s.get(Person, value.reported_by_id).name == "Kim"


def test_a_telegram_leader_named_by_username_gets_the_request_on_first_contact(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    for line in (
        f"JOIN {cohort.enrolment_code}",
        "Maria",
        "St Mary's",
        "5 West",
        "3",
        "3",
        "3",
        "3",
        "3",
    ):
        chat.say(KC, line)
    chat.say(KC, "Ana Ruiz, CNO")
    forward = chat.say(KC, "@ana_ruiz")
    assert "cannot message Ana Ruiz until they open this bot" in forward and "/signoff/" in forward
    # Ana opens the bot: she is recognised by her username and sees the request.
    raw = {"update_id": 9, "message": {"from": {"id": 8080, "username": "Ana_Ruiz"}}}
    request = chat.say("8080", "START", channel="telegram", sender="8080", raw=raw)
    assert "asks you to sign off 5 West" in request
    chat.say("8080", "YES", channel="telegram", sender="8080")
    assert _team(ctx).state == "enrolled"


def test_the_bot_added_to_a_group_by_the_key_contact_links_it(ctx) -> None:
    chat = Chat(ctx)
    cohort = make_cohort(ctx)
    kc_tg = "9001"
    chat.say(kc_tg, f"JOIN {cohort.enrolment_code}", channel="telegram", sender_name="Maria Lopez")
    for line in (
        "St Mary's",
        "5 West",
        "3",
        "3",
        "3",
        "3",
        "3",
        "Maria Lopez, Nurse Manager",
        "me",
        "YES",
    ):
        chat.say(kc_tg, line, channel="telegram")
    _coach_confirms(ctx)
    assert _team(ctx).state == "enrolled"
    group = "-100777"
    linked = chat.say(group, "", channel="telegram", sender=kc_tg, is_group=True, event="bot_added")
    assert "This group is now 5 West" in linked
    assert (_team(ctx).group_channel, _team(ctx).group_address) == ("telegram", group)
    # Members are then reached in the group, not one by one on Telegram.
    assert "Thanks, your coach will see this." in chat.say(
        group, "Short-staffed today", channel="telegram", sender=kc_tg, is_group=True
    )
