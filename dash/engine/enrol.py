"""Joining and enrolling by chat: JOIN <code>, the key contact's questions, the matrix, the
leader, and the leader's YES/NO."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from dash.actions import enrolment, people
from dash.actions.enrolment import (
    UnitTaken,
    leader_contact_context,
    leader_name_question,
    score_question,
)
from dash.engine.identity import new_person
from dash.engine.standing import explain_waiting, put, resume
from dash.engine.turn import Turn
from dash.errors import UserError
from dash.models import MATRIX_CRITERIA, Channel, Cohort, PendingQuestion, Person, Team, TeamState
from dash.parsing import Command, parse_command, parse_leader, parse_score, parse_yes_no
from dash.phones import BadPhoneNumber, from_provider, number_problem, to_e164
from dash.queries import enrolment as enrolment_queries
from dash.queries import people as people_queries
from dash.reach import EMAIL, enabled_channels
from dash.settings import get_settings

#: Longest name, organisation or unit accepted (the columns hold 200).
MAX_NAME = 120


def join(turn: Turn, code: str) -> None:
    """JOIN <code>: a cohort's enrolment code starts enrolment; a team's join code adds a member."""
    if not code:
        turn.reply("join_needs_code")
        return
    session = turn.session
    team = enrolment_queries.team_by_code(session, code)
    if team is not None:
        _join_team(turn, team)
        return
    cohort = enrolment_queries.cohort_by_code(session, code)
    if cohort is not None and not turn.inbound.is_group:
        _start_enrolment(turn, cohort)
        return
    turn.reply("unknown_code", code=code)


def _ensure_person(turn: Turn) -> Person:
    if turn.person is not None:
        return turn.person
    return new_person(turn)


def _join_team(turn: Turn, team: Team) -> None:
    if team.state != TeamState.ENROLLED.value:
        turn.reply("unknown_code", code=team.join_code or "")
        return
    person = _ensure_person(turn)
    turn.use_team(team)
    if turn.inbound.is_group:
        people.link_group(turn.session, team, turn.channel, turn.inbound.address)
        turn.group_team = team
    _, already = people.join_team(turn.session, team, person)
    people.remember_team(turn.session, person, team)
    if turn.inbound.is_group:
        turn.reply("group_linked", team_name=team.name)
        return
    turn.reply("joined", team_name=team.name, already=already, person_name=person.name)
    if not person.name:
        turn.ask("join", "name", data={})
        turn.reply("ask_your_name")


def answer_join_name(turn: Turn, pending: PendingQuestion) -> bool:
    name = _clean_name(turn.text)
    if name is None:
        turn.fail("ask_your_name_again")
        return True
    assert turn.person is not None
    turn.person.name = name
    turn.done()
    turn.reply("thanks_name", person_name=name)
    return True


def _clean_name(text: str) -> str | None:
    value = " ".join(text.split())
    if not value or len(value) > MAX_NAME or parse_command(value) is not None:
        return None
    if not any(ch.isalpha() for ch in value):
        return None
    return value


# -- the key contact's questions ---------------------------------------------------------------


def _start_enrolment(turn: Turn, cohort: Cohort) -> None:
    person = _ensure_person(turn)
    unfinished = enrolment_queries.unfinished_enrolment(turn.session, person, cohort)
    if unfinished is not None:
        # JOIN again half-way: carry on where they stopped rather than leave the team stuck.
        turn.use_team(unfinished)
        turn.reply("enrol_resume", team_name=unfinished.name)
        if not resume(turn, unfinished):
            explain_waiting(turn, unfinished)
        return
    data: dict[str, Any] = {"cohort_id": cohort.id}
    turn.reply("enrol_welcome", cohort_name=cohort.name)
    if person.name:
        data["name"] = person.name
        turn.ask("enrol", "organisation", data=data)
        turn.reply("enrol_ask_organisation", person_name=person.name)
    else:
        turn.ask("enrol", "name", data=data)
        turn.reply("enrol_ask_name")


def ask_score(
    turn: Turn, team: Team, index: int, *, revision: int = 1, scores: dict[str, int] | None = None
) -> None:
    """Ask matrix criterion number `index` (0-based), with 1-5 buttons."""
    turn.use_team(team)
    assert turn.person is not None
    question = score_question(
        turn.session, team, turn.person, index, scores=scores, revision=revision
    )
    put(turn, question)


def reask(turn: Turn, pending: PendingQuestion) -> None:
    """Put the open enrolment question again (after HELP), with what it needs to be answered."""
    data = dict(pending.data or {})
    if pending.step == "name":
        turn.reply("enrol_ask_name")
    elif pending.step == "organisation":
        turn.reply("enrol_ask_organisation", person_name=str(data.get("name") or ""))
    elif pending.step == "unit":
        turn.reply("enrol_ask_unit", organisation=str(data.get("organisation") or ""))
    else:
        team = turn.session.get(Team, data.get("team_id"))
        if team is not None and not resume(turn, team):
            explain_waiting(turn, team)


def _miss(turn: Turn, template: str, **context: Any) -> None:
    """A reply the open question could not use: ask it again with an example; it stays open
    (the coach is flagged from the second miss on)."""
    turn.fail(template, keep_open=True, **context)


def answer(turn: Turn, pending: PendingQuestion) -> bool:
    """An answer to one of the key contact's enrolment questions."""
    step, data = pending.step, dict(pending.data or {})
    person = turn.person
    assert person is not None
    if step in ("name", "organisation", "unit", "leader_name"):
        value = _clean_name(turn.text)
        if value is None:
            _miss(turn, f"enrol_ask_{step}_again")
            return True
        if step == "name":
            person.name = value
            data["name"] = value
            turn.ask("enrol", "organisation", data=data)
            turn.reply("enrol_ask_organisation", person_name=value)
        elif step == "organisation":
            data["organisation"] = value
            turn.ask("enrol", "unit", data=data)
            turn.reply("enrol_ask_unit", organisation=value)
        elif step == "unit":
            _unit_given(turn, data, value)
        else:
            name, _, role = value.partition(",")
            data["leader_name"] = name.strip()[:MAX_NAME]
            data["leader_role"] = role.strip()[:MAX_NAME]
            turn.ask("enrol", "leader_contact", data=data)
            turn.reply("enrol_ask_leader_contact", **leader_contact_context(data["leader_name"]))
        return True
    if step.startswith("score:"):
        _score_given(turn, data, step.split(":", 1)[1])
        return True
    if step == "leader_contact":
        _leader_given(turn, data)
        return True
    return False


def _unit_given(turn: Turn, data: dict[str, Any], unit: str) -> None:
    session = turn.session
    person = turn.person
    assert person is not None
    cohort = session.get(Cohort, data.get("cohort_id"))
    if cohort is None:
        turn.done()
        turn.reply("unknown_code", code="")
        return
    try:
        team = enrolment.start_team(
            session,
            cohort=cohort,
            key_contact=person,
            organisation=str(data.get("organisation", "")),
            unit=unit,
        )
    except UnitTaken as exc:
        turn.done()
        contact = session.get(Person, exc.team.key_contact_id) if exc.team.key_contact_id else None
        turn.reply(
            "unit_taken", team_name=exc.team.name, key_contact=contact.name if contact else ""
        )
        return
    turn.use_team(team)
    if team.state == TeamState.ENROLLED.value:
        turn.done()
        turn.reply("already_enrolled", team_name=team.name, join_code=team.join_code or "")
        return
    if team.state == TeamState.AWAITING_SIGNOFF.value and team.leader_id is None:
        put(turn, leader_name_question(session, team, person))
        return
    if team.state == TeamState.AWAITING_SIGNOFF.value:
        turn.done()
        turn.reply("enrol_waiting", team_name=team.name)
        return
    if team.state == TeamState.DECLINED.value:
        enrolment.reopen_matrix(session, team)
    turn.reply("enrol_matrix_intro", team_name=team.name)
    ask_score(turn, team, 0)


def _score_given(turn: Turn, data: dict[str, Any], criterion: str) -> None:
    score = parse_score(turn.text, turn.callback, criterion)
    team = turn.session.get(Team, data.get("team_id"))
    if team is None:
        turn.done()
        turn.reply("no_team")
        return
    if score is None and turn.text.isdigit() and len(turn.text) <= 3:
        # A number off the scale is a real attempt: say so, without counting it as a miss.
        turn.reply("matrix_score_out_of_range", score=turn.text, criterion=criterion)
        return
    if score is None:
        _miss(turn, "matrix_score_again", criterion=criterion)
        return
    scores = dict(data.get("scores") or {})
    scores[criterion] = score
    index = MATRIX_CRITERIA.index(criterion)
    if index + 1 < len(MATRIX_CRITERIA):
        ask_score(turn, team, index + 1, revision=int(data.get("revision", 1)), scores=scores)
        return
    person = turn.person
    try:
        matrix = enrolment.submit_matrix(
            turn.session, team=team, scores=scores, by=person, via=turn.channel
        )
    except UserError:
        turn.done()
        turn.reply("enrol_waiting", team_name=team.name)
        return
    turn.done()
    context = enrolment.matrix_context(matrix)
    if team.leader_id is not None:
        leader = turn.session.get(Person, team.leader_id)
        turn.reply(
            "matrix_done_resent",
            team_name=team.name,
            leader_name=leader.name if leader else "",
            **context,
        )
        return
    turn.ask("enrol", "leader_name", data={"team_id": team.id})
    turn.reply("matrix_done_ask_leader", team_name=team.name, **context)


def _leader_given(turn: Turn, data: dict[str, Any]) -> None:
    session = turn.session
    person = turn.person
    assert person is not None
    team = session.get(Team, data.get("team_id"))
    if team is None:
        turn.done()
        turn.reply("no_team")
        return
    parsed = parse_leader(turn.text)
    leader: Person | None = None
    if parsed is not None and parsed[0] == "me":
        leader = person
    elif parsed is not None and parsed[0] == "telegram":
        leader = _leader_by_username(turn, parsed[1], data)
    elif parsed is not None and parsed[0] == "email":
        leader = _leader_by_email(turn, parsed[1], data)
    elif parsed is not None:
        number = _phone(parsed[1], turn.channel)
        if number is None:
            # A well-meant number the bot cannot use: say why, and do not count it as a miss.
            region = get_settings().default_region
            turn.reply(
                "enrol_leader_phone_refused",
                number=parsed[1],
                reason=number_problem(parsed[1], region, mobile=True) or "not_in_use",
                **leader_contact_context(str(data.get("leader_name") or "")),
            )
            return
        leader = _leader_by_phone(turn, number, data)
    if leader is None:
        _miss(turn, "enrol_ask_leader_contact_again", **leader_contact_context(""))
        return
    if leader.id != person.id and not leader.name:
        leader.name = str(data.get("leader_name") or "")
    enrolment.set_leader(session, team=team, leader=leader)
    turn.done()
    role = str(data.get("leader_role") or "")
    from dash.reach import best_address, reply_windows

    enabled = enabled_channels(turn.ctx)
    reached = enrolment.request_signoff(
        session, team, leader_role=role, enabled=enabled, windows=reply_windows(turn.ctx)
    )
    link = enrolment.signoff_url(turn.ctx, turn.ctx.secret, team)
    if leader.id == person.id:
        return  # the request itself went to them
    turn.reply(
        "signoff_requested" if reached else "signoff_forward_link",
        leader_name=leader.name,
        link=link,
        link_hours=turn.ctx.settings.link_ttl_hours,
        # Reachable but not yet: their channel takes a first message only as a template.
        must_write_first=best_address(leader, None, enabled) is not None,
    )


def _phone(raw: str, channel: str) -> str | None:
    """E.164 of a typed mobile number; on the console (a simulation) any +digits will do."""
    region = get_settings().default_region
    try:
        number = to_e164(raw, region)
    except BadPhoneNumber:
        number = None
    if number is not None and (
        channel == Channel.CONSOLE.value or number_problem(number, region, mobile=True) is None
    ):
        return number
    if channel == Channel.CONSOLE.value:
        try:
            return from_provider(raw.replace(" ", "").replace("-", ""))
        except BadPhoneNumber:
            return None
    return None


def _leader_by_phone(turn: Turn, number: str, data: dict[str, Any]) -> Person:
    """The leader at `number`, reached on the key contact's channel where it can carry a phone."""
    session = turn.session
    existing = people_queries.person_with_address(session, number)
    if existing is not None:
        return existing
    assert turn.person is not None
    leader = Person(name=str(data.get("leader_name") or ""), language=turn.person.language)
    channel = turn.channel
    if channel not in (Channel.WHATSAPP.value, Channel.CONSOLE.value):
        channel = Channel.SMS.value  # a phone number cannot be messaged on Telegram
    session.add(leader)
    people.add_address(session, leader, channel, number)
    leader.preferred_channel = channel
    session.flush()
    return leader


def _leader_by_email(turn: Turn, address: str, data: dict[str, Any]) -> Person:
    """The leader at e-mail `address`: whoever already has it, else a new person reached there."""
    session = turn.session
    existing = people_queries.person_with_address(session, address)
    if existing is not None:
        return existing
    assert turn.person is not None
    leader = Person(name=str(data.get("leader_name") or ""), language=turn.person.language)
    session.add(leader)
    people.add_address(session, leader, EMAIL, address)
    return leader


def _leader_by_username(turn: Turn, username: str, data: dict[str, Any]) -> Person:
    session = turn.session
    name = username.lstrip("@")
    existing = people_queries.person_by_display(
        session, Channel.TELEGRAM.value, name, only_unseen=False
    )
    if existing is not None:
        return existing
    assert turn.person is not None
    leader = Person(
        name=str(data.get("leader_name") or ""),
        language=turn.person.language,
        preferred_channel=Channel.TELEGRAM.value,
    )
    session.add(leader)
    people.add_address(session, leader, Channel.TELEGRAM.value, None, display=name)
    return leader


# -- the leader's answer -----------------------------------------------------------------------


def answer_signoff(turn: Turn, pending: PendingQuestion) -> bool:
    team = turn.session.get(Team, pending.data.get("team_id"))
    if team is None or team.state != TeamState.AWAITING_SIGNOFF.value:
        turn.done()
        return False
    decision = _decision(turn)
    if decision is None:
        turn.fail("signoff_yes_or_no", team_name=team.name)
        return True
    _decide(turn, team, decision[0], decision[1], str(pending.data.get("leader_role") or ""))
    return True


def signoff_without_question(turn: Turn, command: Command) -> bool:
    """YES/NO from a leader whose request is no longer the question in hand."""
    person = turn.person
    if person is None:
        return False
    team = turn.session.execute(
        select(Team)
        .where(Team.leader_id == person.id, Team.state == TeamState.AWAITING_SIGNOFF.value)
        .order_by(Team.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if team is None:
        return False
    _decide(turn, team, command.name, command.arg, "")
    return True


def _decision(turn: Turn) -> tuple[str, str] | None:
    if turn.callback in ("signoff:yes", "signoff:no"):
        return turn.callback.split(":", 1)[1], ""
    return parse_yes_no(turn.text)


def _decide(turn: Turn, team: Team, answer: str, comment: str, role: str) -> None:
    person = turn.person
    assert person is not None
    turn.use_team(team)
    decision = "approved" if answer == "yes" else "declined"
    enrolment.record_signoff(
        turn.session,
        team=team,
        decision=decision,
        leader_name=person.name,
        leader_role=role,
        comment=comment,
        via=turn.channel,
        leader=person,
    )
    contact = turn.session.get(Person, team.key_contact_id) if team.key_contact_id else None
    if contact is not None and contact.id == person.id:
        return  # the key contact signed their own enrolment: the approval message says it all
    turn.reply(
        "signoff_thanks",
        approved=decision == "approved",
        team_name=team.name,
        key_contact=contact.name if contact else "",
    )
