"""Enrolling a unit: the key contact's priority matrix, then the leader's sign-off.

The same rules hold for chat and the web form: a matrix is five scores 1-5 (each revision
kept); the leader approves or declines a specific revision; approval enrols the team (state
`enrolled`, a join code for members) and only then does the scheduler compile its agenda;
a decline tells the key contact, who can revise the matrix (a new revision, a new request).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dash.actions.aims import set_initial_aim
from dash.actions.people import add_address, add_role, ask, clear_pending
from dash.actions.queueing import queue_to_person
from dash.context import AppContext
from dash.errors import UserError
from dash.links import link_url
from dash.models import (
    MATRIX_CRITERIA,
    Channel,
    Cohort,
    InstanceValue,
    Organisation,
    PendingQuestion,
    Person,
    PriorityMatrix,
    Role,
    SignOff,
    Team,
    TeamState,
    Unit,
)
from dash.parsing import parse_leader
from dash.phones import example_number, number_problem, to_e164
from dash.queries.cohorts import unused_code
from dash.queries.enrolment import (
    STAGE_DECLINED,
    STAGE_ENROLLED,
    STAGE_LEADER,
    STAGE_MATRIX,
    UNFINISHED,
    enrolment_stage,
    latest_matrix,
    self_signoffs,
)
from dash.queries.people import pending_of, person_by_display, person_with_address
from dash.reach import EMAIL
from dash.settings import Settings, get_settings
from dash.texts import render
from dash.timeutil import utcnow


class UnitTaken(UserError):
    """The unit already has a team in this cohort, enrolled by someone else."""

    def __init__(self, team: Team) -> None:
        super().__init__(f"{team.name} is already enrolled in this cohort")
        self.team = team


def start_team(
    session: Session, *, cohort: Cohort, key_contact: Person, organisation: str, unit: str
) -> Team:
    """The team of `unit` at `organisation` in `cohort`, with `key_contact` as its key contact.

    Re-entering the same unit by the same key contact resumes that team; another person's
    unit raises UnitTaken (they should ask that key contact for the join code).
    """
    org_name, unit_name = organisation.strip()[:200], unit.strip()[:200]
    if not org_name or not unit_name:
        raise UserError("organisation and unit are both needed")
    org = session.execute(
        select(Organisation).where(func.lower(Organisation.name) == org_name.lower())
    ).scalar_one_or_none()
    if org is None:
        org = Organisation(name=org_name)
        session.add(org)
        session.flush()
    unit_row = session.execute(
        select(Unit).where(
            Unit.organisation_id == org.id, func.lower(Unit.name) == unit_name.lower()
        )
    ).scalar_one_or_none()
    if unit_row is None:
        unit_row = Unit(organisation_id=org.id, name=unit_name)
        session.add(unit_row)
        session.flush()
    team = session.execute(
        select(Team).where(Team.cohort_id == cohort.id, Team.unit_id == unit_row.id)
    ).scalar_one_or_none()
    if team is not None:
        if team.key_contact_id != key_contact.id:
            raise UnitTaken(team)
        return team
    team = Team(
        cohort_id=cohort.id,
        unit_id=unit_row.id,
        name=f"{unit_row.name}, {org.name}"[:300],
        state=TeamState.AWAITING_MATRIX.value,
        key_contact_id=key_contact.id,
    )
    session.add(team)
    session.flush()
    add_role(session, team, key_contact, Role.KEY_CONTACT.value)
    add_role(session, team, key_contact, Role.DATA_REPORTER.value)
    return team


def submit_matrix(
    session: Session, *, team: Team, scores: Mapping[str, int], by: Person | None, via: str
) -> PriorityMatrix:
    """Record a new revision of the team's priority matrix and ask the leader to sign it off
    (when the leader is known; otherwise once they are named)."""
    if team.state not in (
        TeamState.AWAITING_MATRIX.value,
        TeamState.AWAITING_SIGNOFF.value,
        TeamState.DECLINED.value,
    ):
        raise UserError(f"{team.name} is {team.state}; its matrix can no longer change")
    values: dict[str, int] = {}
    for criterion in MATRIX_CRITERIA:
        value = scores.get(criterion)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
            raise UserError(f"{criterion} needs a score from 1 to 5")
        values[criterion] = value
    previous = latest_matrix(session, team)
    matrix = PriorityMatrix(
        team_id=team.id,
        revision=(previous.revision + 1) if previous else 1,
        total=sum(values.values()),
        submitted_by_id=by.id if by else None,
        via=via,
        **values,
    )
    session.add(matrix)
    team.state = TeamState.AWAITING_SIGNOFF.value
    session.flush()
    if team.leader_id is not None:
        request_signoff(session, team)
    return matrix


def set_leader(session: Session, *, team: Team, leader: Person) -> None:
    """Name the person who signs the team off."""
    team.leader_id = leader.id


def signoff_url(ctx_or_settings: AppContext | Settings, secret: str, team: Team) -> str:
    """The leader's signed, expiring link to the web sign-off page for `team`."""
    settings = (
        ctx_or_settings.settings if isinstance(ctx_or_settings, AppContext) else ctx_or_settings
    )
    return link_url(settings.public_url, secret, "signoff", team.id)


def _secret(session: Session) -> str:
    """The deployment's secret key (configured, or the one generated on first run)."""
    settings = get_settings()
    if settings.secret_key:
        return settings.secret_key
    row = session.get(InstanceValue, "secret_key")
    if row is None:
        raise UserError("the secret key is not set up yet: run `dash init`")
    return row.value


def matrix_context(matrix: PriorityMatrix) -> dict[str, Any]:
    return {
        "scores": [(c, getattr(matrix, c)) for c in MATRIX_CRITERIA],
        "total": matrix.total,
        "revision": matrix.revision,
    }


def request_signoff(
    session: Session,
    team: Team,
    *,
    leader_role: str = "",
    enabled: Collection[str] | None = None,
    windows: Mapping[str, Any] | None = None,
) -> Person | None:
    """Send the leader the sign-off request (matrix, YES/NO, and the signed web link) on one
    of their addresses among the `enabled` channels (None: any).

    Returns the leader when the request could be queued; None when the leader cannot be
    reached by message yet (e.g. a Telegram @username who has not opened the bot, or a
    number whose channel takes no first message without an approved template and has no
    fallback: `windows`, see queue_to_person), in which case the key contact forwards the link.
    """
    leader = session.get(Person, team.leader_id) if team.leader_id else None
    matrix = latest_matrix(session, team)
    if leader is None or matrix is None:
        return None
    settings = get_settings()
    contact = session.get(Person, team.key_contact_id) if team.key_contact_id else None
    previous = pending_of(session, leader)
    role = leader_role or (previous.data.get("leader_role", "") if previous else "")
    ask(
        session,
        leader,
        "signoff",
        "decision",
        team=team,
        data={"team_id": team.id, "matrix_id": matrix.id, "leader_role": role},
    )
    text = render(
        "signoff_request",
        leader.language,
        leader_name=leader.name,
        team_name=team.name,
        topic=team.cohort.topic,
        cohort_name=team.cohort.name,
        key_contact_name=contact.name if contact else "",
        link=signoff_url(settings, _secret(session), team),
        link_hours=settings.link_ttl_hours,
        **matrix_context(matrix),
    )
    buttons = [[{"text": "YES", "data": "signoff:yes"}, {"text": "NO", "data": "signoff:no"}]]
    payload: dict[str, Any] = {"buttons": buttons}
    sid = settings.signoff_template_sid
    if sid:
        payload["template"] = {
            "content_sid": sid,
            "variables": {
                "1": leader.name or "",
                "2": contact.name if contact else "",
                "3": team.name,
                "4": signoff_url(settings, _secret(session), team),
            },
        }
    sent = queue_to_person(
        session,
        leader,
        text,
        team=team,
        kind="signoff",
        payload=payload,
        enabled=enabled,
        windows=windows,
    )
    return leader if sent is not None else None


def record_signoff(
    session: Session,
    *,
    team: Team,
    decision: str,
    leader_name: str,
    leader_role: str,
    comment: str,
    via: str,
    leader: Person | None,
) -> SignOff:
    """The leader's decision on the latest matrix. Approval enrols the team and issues its
    join code; a decline lets the key contact revise. Either way the key contact is told."""
    if decision not in ("approved", "declined"):
        raise UserError("the decision is either approved or declined")
    if team.state != TeamState.AWAITING_SIGNOFF.value:
        raise UserError(f"{team.name} is not waiting for a sign-off (it is {team.state})")
    matrix = latest_matrix(session, team)
    if matrix is None:
        raise UserError(f"{team.name} has no priority matrix to sign off yet")
    signoff = SignOff(
        team_id=team.id,
        matrix_id=matrix.id,
        leader_id=leader.id if leader else None,
        leader_name=(leader_name or (leader.name if leader else "")).strip()[:200],
        leader_role=(leader_role or "").strip()[:200],
        decision=decision,
        comment=(comment or "").strip(),
        via=via,
        decided_at=utcnow(),
    )
    session.add(signoff)
    contact = session.get(Person, team.key_contact_id) if team.key_contact_id else None
    if leader is not None:
        pending = pending_of(session, leader)
        if pending is not None and pending.flow == "signoff":
            clear_pending(session, leader)
    if decision == "approved" and leader is None and team.leader_id is None:
        raise UserError(f"{team.name} has no leader on record: name one before approving")
    if decision == "approved" and leader is not None and leader.id == team.key_contact_id:
        # Signing off one's own unit is no leader's sign-off: a coach confirms it first.
        session.flush()
        if contact is not None:
            queue_to_person(
                session,
                contact,
                render("enrol_self_signoff", contact.language, team_name=team.name),
                team=team,
            )
        return signoff
    if decision == "approved":
        _enrol(session, team, signoff, leader or team.leader, contact)
    else:
        team.state = TeamState.DECLINED.value
        if contact is not None:
            queue_to_person(
                session,
                contact,
                render(
                    "enrol_declined",
                    contact.language,
                    team_name=team.name,
                    leader_name=signoff.leader_name,
                    comment=signoff.comment,
                ),
                team=team,
            )
    session.flush()
    return signoff


def _enrol(
    session: Session, team: Team, signoff: SignOff, leader: Person | None, contact: Person | None
) -> None:
    """Approval: the team is enrolled with its join code and aim; the key contact is told."""
    team.state = TeamState.ENROLLED.value
    team.enrolled_at = utcnow()
    team.join_code = team.join_code or unused_code(session)
    set_initial_aim(session, team, contact.language if contact else "en")
    if leader is not None:
        add_role(session, team, leader, Role.LEADER.value)
    if contact is not None:
        queue_to_person(
            session,
            contact,
            render(
                "enrol_approved",
                contact.language,
                team_name=team.name,
                leader_name=signoff.leader_name,
                join_code=team.join_code,
                comment=signoff.comment,
            ),
            team=team,
        )
    session.flush()


def confirm_self_signoff(session: Session, *, team: Team, coach: Person) -> SignOff:
    """A coach confirms the key contact's approval of their own unit: the team is enrolled
    (the confirmation is kept as a sign-off row of its own, via "coach")."""
    approval = self_signoffs(session, [team.id]).get(team.id)
    if approval is None:
        raise UserError(f"{team.name} has no self sign-off waiting for a coach")
    leader = session.get(Person, approval.leader_id) if approval.leader_id else None
    confirmation = SignOff(
        team_id=team.id,
        matrix_id=approval.matrix_id,
        leader_id=approval.leader_id,
        leader_name=approval.leader_name,
        leader_role=approval.leader_role,
        decision="approved",
        comment=f"confirmed by {coach.name or 'a coach'}"[:500],
        via="coach",
        decided_at=utcnow(),
    )
    session.add(confirmation)
    contact = session.get(Person, team.key_contact_id) if team.key_contact_id else None
    _enrol(session, team, confirmation, leader, contact)
    return confirmation


def name_leader(session: Session, *, team: Team, name: str, contact: str) -> Person:
    """The leader named on the web (matrix form, sign-off link): `find_leader` for the typed
    mobile number, e-mail or @username. Never the key contact: their own approval is no
    leader's. Raises UserError saying what is wrong."""
    name = name.strip()[:200]
    if not name:
        raise UserError("write the name of the leader who signs off")
    if not contact.strip():
        raise UserError(
            "write the leader's mobile number with its country code or their e-mail address"
        )
    contact_person = session.get(Person, team.key_contact_id) if team.key_contact_id else None
    leader = find_leader(
        session,
        contact,
        name=name,
        language=contact_person.language if contact_person else "en",
        channel=(contact_person.preferred_channel or "") if contact_person else "",
    )
    if leader is None or (contact_person is not None and leader.id == contact_person.id):
        raise UserError("name the leader who signs off, not the key contact")
    if not leader.name:
        leader.name = name
    set_leader(session, team=team, leader=leader)
    session.flush()
    session.expire(team, ["leader"])  # the relationship follows the new leader_id
    return leader


def reopen_matrix(session: Session, team: Team) -> None:
    """After a decline, the key contact scores the matrix again (a new revision follows)."""
    if team.state != TeamState.DECLINED.value:
        raise UserError(f"{team.name} is {team.state}; only a declined enrolment is revised")
    team.state = TeamState.AWAITING_MATRIX.value


# -- the open question, and repairing a stuck enrolment ----------------------------------------


@dataclass
class Question:
    """An enrolment question put to the key contact: its step and how to render it."""

    step: str
    template: str
    context: dict[str, Any]
    payload: dict[str, Any] | None = None


def score_question(
    session: Session,
    team: Team,
    person: Person,
    index: int,
    *,
    scores: Mapping[str, int] | None = None,
    revision: int = 1,
) -> Question:
    """Ask `person` matrix criterion number `index` (0-based) for `team`, with 1-5 buttons."""
    criterion = MATRIX_CRITERIA[index]
    step = f"score:{criterion}"
    data = {"team_id": team.id, "scores": dict(scores or {}), "revision": revision}
    ask(session, person, "enrol", step, team=team, data=data)
    buttons = [[{"text": str(n), "data": f"score:{criterion}:{n}"} for n in range(1, 6)]]
    context = {
        "criterion": criterion,
        "number": index + 1,
        "count": len(MATRIX_CRITERIA),
        "first": index == 0,
    }
    return Question(step, "matrix_question", context, {"buttons": buttons})


def leader_name_question(session: Session, team: Team, person: Person) -> Question:
    """Ask `person` who signs `team` off (their name and role)."""
    ask(session, person, "enrol", "leader_name", team=team, data={"team_id": team.id})
    return Question("leader_name", "enrol_ask_leader_name", {"team_name": team.name})


def leader_contact_context(leader_name: str) -> dict[str, Any]:
    """What the question for the leader's number, address or @username shows."""
    return {"leader_name": leader_name, "example": example_number(get_settings().default_region)}


def open_question(session: Session, team: Team, person: Person) -> Question | None:
    """Ask the key contact `person` again what `team`'s enrolment waits for, where it stopped:
    the next unscored criterion (scores already given to the open question are kept), or the
    leader's name or contact. None when the key contact has nothing to answer (the leader's
    sign-off is awaited, or the team is enrolled). A declined team's matrix is reopened."""
    stage = enrolment_stage(team)
    pending = pending_of(session, person)
    same = _asks_about(pending, "enrol", team)
    data = dict(pending.data or {}) if pending is not None and same else {}
    if stage == STAGE_DECLINED:
        reopen_matrix(session, team)
        stage, data = STAGE_MATRIX, {}
    if stage == STAGE_MATRIX:
        scores = {k: v for k, v in dict(data.get("scores") or {}).items() if k in MATRIX_CRITERIA}
        index = next(i for i, c in enumerate(MATRIX_CRITERIA) if c not in scores or i == 4)
        previous = latest_matrix(session, team)
        revision = int(data.get("revision") or ((previous.revision + 1) if previous else 1))
        return score_question(session, team, person, index, scores=scores, revision=revision)
    if stage == STAGE_LEADER:
        if pending is not None and same and pending.step == "leader_contact":
            ask(session, person, "enrol", "leader_contact", team=team, data=data)
            context = leader_contact_context(str(data.get("leader_name") or ""))
            return Question("leader_contact", "enrol_ask_leader_contact", context)
        return leader_name_question(session, team, person)
    return None


def _asks_about(pending: PendingQuestion | None, flow: str, team: Team) -> bool:
    """Whether `pending` is a question of `flow` about `team`."""
    return (
        pending is not None
        and pending.flow == flow
        and (pending.data or {}).get("team_id") == team.id
    )


def _key_contact(session: Session, team: Team) -> Person:
    contact = session.get(Person, team.key_contact_id) if team.key_contact_id else None
    if contact is None:
        raise UserError(f"{team.name} has no key contact to ask")
    return contact


def _queue_question(
    session: Session,
    team: Team,
    contact: Person,
    intro: str,
    question: Question,
    enabled: Collection[str] | None,
) -> bool:
    """Send the key contact `intro` and the question in one message; whether it was queued."""
    text = "\n".join(
        [
            render(intro, contact.language, team_name=team.name),
            render(question.template, contact.language, **question.context),
        ]
    )
    sent = queue_to_person(
        session, contact, text, team=team, payload=question.payload, enabled=enabled
    )
    return sent is not None


def resume_enrolment(
    session: Session,
    team: Team,
    by: Person | None,
    *,
    enabled: Collection[str] | None = None,
    windows: Mapping[str, Any] | None = None,
) -> str:
    """Pick a stuck enrolment up where it stopped (a coach or admin, from the dashboard).

    The key contact is asked the open question again (the step is returned, e.g.
    'score:influence', 'leader_name', 'leader_contact'); when the leader's sign-off is what
    waits, the leader is sent the request again ('signoff', or 'signoff_unreached' when
    they cannot be messaged yet). A declined matrix is reopened for revision. The team's
    coach flag is left to the coach's reply.
    """
    if team.state not in UNFINISHED:
        raise UserError(f"{team.name} is {team.state}: there is no enrolment to resume")
    contact = _key_contact(session, team)
    question = open_question(session, team, contact)
    if question is None:
        reached = request_signoff(session, team, enabled=enabled, windows=windows)
        return "signoff" if reached is not None else "signoff_unreached"
    _queue_question(session, team, contact, "enrol_resumed", question, enabled)
    session.flush()
    return question.step


def restart_enrolment(
    session: Session, team: Team, by: Person | None, *, enabled: Collection[str] | None = None
) -> str:
    """Start a team's enrolment over from the first matrix score (a coach or admin).

    The leader named so far is forgotten (and no longer asked to sign off); earlier matrix
    revisions stay on record and the next one follows them. Returns the step asked.
    """
    if team.state not in UNFINISHED:
        raise UserError(f"{team.name} is {team.state}: only an unfinished enrolment restarts")
    contact = _key_contact(session, team)
    if team.leader_id is not None:
        leader = session.get(Person, team.leader_id)
        pending = pending_of(session, leader) if leader is not None else None
        if leader is not None and _asks_about(pending, "signoff", team):
            clear_pending(session, leader)
    team.leader_id = None
    team.state = TeamState.AWAITING_MATRIX.value
    clear_pending(session, contact)
    previous = latest_matrix(session, team)
    question = score_question(
        session, team, contact, 0, revision=(previous.revision + 1) if previous else 1
    )
    _queue_question(session, team, contact, "enrol_restarted", question, enabled)
    session.flush()
    return question.step


def find_leader(
    session: Session, contact: str, *, name: str, language: str, channel: str
) -> Person | None:
    """The person reached at `contact` (a phone number, e-mail address or Telegram
    @username): whoever already holds it, else a new person with that address. None for
    'ME' (the caller knows who that is). A number is reached on `channel` (SMS unless the
    key contact's channel carries phone numbers). Raises UserError saying what is wrong."""
    parsed = parse_leader(contact)
    if parsed is None:
        raise UserError(f"{contact!r} is not a phone number, e-mail address or Telegram @username")
    kind, value = parsed
    if kind == "me":
        return None
    if kind == "telegram":
        existing = person_by_display(session, Channel.TELEGRAM.value, value, only_unseen=False)
        channel, address, display = Channel.TELEGRAM.value, None, value.lstrip("@")
    elif kind == "email":
        existing = person_with_address(session, value)
        channel, address, display = EMAIL, value, None
    else:
        region = get_settings().default_region
        problem = number_problem(value, region, mobile=True)
        if problem is not None:
            raise UserError(render("phone_refused_reason", "en", reason=problem, number=value))
        address = to_e164(value, region)
        existing = person_with_address(session, address)
        display = None
        if channel not in (Channel.WHATSAPP.value, Channel.CONSOLE.value):
            channel = Channel.SMS.value
    if existing is not None:
        return existing
    leader = Person(name=name[:200], language=language, preferred_channel=channel)
    session.add(leader)
    add_address(session, leader, channel, address, display=display)
    session.flush()
    return leader


def set_leader_contact(
    session: Session,
    team: Team,
    by: Person | None,
    *,
    name: str,
    contact: str,
    role: str = "",
    enabled: Collection[str] | None = None,
    windows: Mapping[str, Any] | None = None,
) -> tuple[Person, bool]:
    """Name or correct the leader of an unfinished enrolment (a coach or admin): `contact` is
    their mobile number, e-mail address, Telegram @username or ME (the key contact).

    When the matrix is done the leader is asked to sign off at once, and the key contact's
    open question about the leader is closed. Returns the leader and whether the sign-off
    request could be queued (False: forward them the signed link, `signoff_url`).
    """
    if team.state not in UNFINISHED:
        raise UserError(f"{team.name} is {team.state}: its leader is no longer edited here")
    key_contact = _key_contact(session, team)
    leader = find_leader(
        session,
        contact,
        name=name.strip(),
        language=key_contact.language,
        channel=key_contact.preferred_channel or Channel.SMS.value,
    )
    leader = leader or key_contact
    if name.strip() and leader.id != key_contact.id:
        leader.name = name.strip()[:200]
    set_leader(session, team=team, leader=leader)
    pending = pending_of(session, key_contact)
    step = pending.step if pending is not None else ""
    if _asks_about(pending, "enrol", team) and step.startswith("leader_"):
        clear_pending(session, key_contact)
    reached = False
    if team.state == TeamState.AWAITING_SIGNOFF.value:
        sent = request_signoff(
            session, team, leader_role=role, enabled=enabled, windows=windows
        )
        reached = sent is not None
    session.flush()
    return leader, reached


def edit_matrix(
    session: Session,
    team: Team,
    by: Person | None,
    scores: Mapping[str, int],
    *,
    enabled: Collection[str] | None = None,
) -> PriorityMatrix:
    """Enter or correct the five matrix scores for the key contact (a coach or admin, e.g.
    from a phone call). A new revision is recorded; the leader, when named, is asked to sign
    it off, and otherwise the key contact is asked who the leader is."""
    if enrolment_stage(team) == STAGE_ENROLLED:
        raise UserError(f"{team.name} is {team.state}; its matrix can no longer change")
    if team.state == TeamState.DECLINED.value:
        reopen_matrix(session, team)
    matrix = submit_matrix(session, team=team, scores=scores, by=by, via="web")
    contact = _key_contact(session, team)
    pending = pending_of(session, contact)
    if pending is not None and pending.flow == "enrol" and pending.step.startswith("score:"):
        clear_pending(session, contact)
    if team.leader_id is None:
        question = leader_name_question(session, team, contact)
        _queue_question(session, team, contact, "enrol_matrix_entered", question, enabled)
    session.flush()
    return matrix
