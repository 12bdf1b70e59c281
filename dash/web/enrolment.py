"""Pages behind signed links, for people without an account: the key contact's priority
matrix and the leader's sign-off. Same actions and records as the chat flow."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from dash.curriculum import CurriculumNotFound, load_curriculum
from dash.links import BadLink, LinkClaim, is_used, mark_used, read_token
from dash.models import MATRIX_CRITERIA, PriorityMatrix, SignOff, Team
from dash.models.teams import TeamState
from dash.queries.people import pending_of
from dash.web.pages import Page

# What each criterion asks (QI-REFERENCE.md, "Priority matrix"): 1 low to 5 high.
CRITERIA = {
    "importance": ("Importance", "How important is this topic to your unit and organisation?"),
    "influence": ("Ability to influence change", "How much can your team change this itself?"),
    "project_length": (
        "Length of the project",
        "How quickly can it be done? Shorter scores higher (5 = fits in two weeks).",
    ),
    "expense": ("Expense of the issue prevented", "How costly is the harm or waste it prevents?"),
    "frequency": ("Frequency of occurrence", "How often does the problem happen on your unit?"),
}

PROBLEMS = {
    "expired": "This link has expired. Links work for a limited time; ask your coach or key contact for a new one.",
    "used": "This link was already used, so it cannot be used again. Ask your coach or key contact if something needs changing.",
    "invalid": "This link is not valid. Check that you copied the whole link, or ask for a new one.",
}


def _claim(page: Page, purpose: str) -> tuple[LinkClaim, Team]:
    claim = read_token(
        page.ctx.secret,
        purpose,
        page.request.path_params["token"],
        page.ctx.settings.link_ttl_hours * 3600,
    )
    team = page.db.get(Team, claim.subject)
    if team is None:
        raise BadLink("invalid")
    return claim, team


def topic_title(team: Team) -> tuple[str, str]:
    try:
        curriculum = load_curriculum(team.cohort.topic)
    except CurriculumNotFound:
        return team.cohort.topic, ""
    return curriculum.title.get("en"), curriculum.summary.get("en")


def latest_matrix(db: Session, team: Team) -> PriorityMatrix | None:
    return (
        db.execute(
            select(PriorityMatrix)
            .where(PriorityMatrix.team_id == team.id)
            .order_by(PriorityMatrix.revision.desc())
        )
        .scalars()
        .first()
    )


def latest_signoff(db: Session, team: Team) -> SignOff | None:
    return (
        db.execute(
            select(SignOff).where(SignOff.team_id == team.id).order_by(SignOff.decided_at.desc())
        )
        .scalars()
        .first()
    )


def problem(page: Page, reason: str) -> Response:
    return page.render("link_problem.html", status=410, message=PROBLEMS[reason])


def matrix_page(page: Page) -> Response:
    """The key contact scores the cohort's topic on the five criteria."""
    from dash.actions.enrolment import name_leader, signoff_url, submit_matrix

    try:
        claim, team = _claim(page, "matrix")
    except BadLink as exc:
        return problem(page, exc.reason)
    open_states = (TeamState.AWAITING_MATRIX.value, TeamState.DECLINED.value)
    if is_used(page.db, claim) or team.state not in open_states:
        return page.render("link_done.html", team=team, what="matrix")
    title, summary = topic_title(team)
    leader = {"name": page.field("leader_name"), "contact": page.field("leader_contact")}
    context = {
        "team": team,
        "title": title,
        "summary": summary,
        "criteria": CRITERIA,
        "leader": leader,
    }
    if page.form is None:
        return page.render("matrix.html", scores={}, errors=[], **context)
    scores: dict[str, int] = {}
    errors = []
    for key in MATRIX_CRITERIA:
        raw = page.field(key)
        if raw in {"1", "2", "3", "4", "5"}:
            scores[key] = int(raw)
        else:
            errors.append(f"Choose a score from 1 to 5 for “{CRITERIA[key][0]}”.")
    if team.leader is None:
        # Every enrolled team has a leader on record: summaries and escalations go to them.
        with page.attempt() as problems:
            name_leader(
                page.db,
                team=team,
                name=leader["name"],
                contact=leader["contact"],
            )
        errors.extend(f"Leader: {p}." for p in problems)
    if errors:
        page.db.refresh(team)
        return page.render("matrix.html", status=400, scores=scores, errors=errors, **context)
    try:
        mark_used(page.db, claim)
    except BadLink as exc:
        return problem(page, exc.reason)
    matrix = submit_matrix(page.db, team=team, scores=scores, by=team.key_contact, via="web")
    return page.render(
        "matrix_done.html",
        team=team,
        matrix=matrix,
        criteria=CRITERIA,
        signoff_link=signoff_url(page.ctx, page.ctx.secret, team),
    )


def signoff_page(page: Page) -> Response:
    """The leader sees the matrix and approves or declines, with name, role and comment."""
    from dash.actions.enrolment import name_leader, record_signoff

    try:
        claim, team = _claim(page, "signoff")
    except BadLink as exc:
        return problem(page, exc.reason)
    if is_used(page.db, claim) or team.state != TeamState.AWAITING_SIGNOFF.value:
        return page.render(
            "link_done.html", team=team, what="signoff", signoff=latest_signoff(page.db, team)
        )
    matrix = latest_matrix(page.db, team)
    title, summary = topic_title(team)
    leader = team.leader
    asked = pending_of(page.db, leader) if leader else None  # the role the key contact gave
    known_role = (
        str(asked.data.get("leader_role") or "") if asked and asked.flow == "signoff" else ""
    )
    values = {
        "name": page.field("name", leader.name if leader else ""),
        "role": page.field("role", known_role),
        "comment": page.field("comment"),
        "decision": page.field("decision"),
        "contact": page.field("contact"),
    }
    context = {
        "team": team,
        "matrix": matrix,
        "criteria": CRITERIA,
        "title": title,
        "summary": summary,
        "values": values,
    }
    if page.form is None:
        return page.render("signoff.html", errors=[], **context)
    errors = []
    if values["decision"] not in ("approved", "declined"):
        errors.append("Choose approve or decline.")
    if not values["name"]:
        errors.append("Write your name: the sign-off is kept as a record.")
    if not values["role"]:
        errors.append("Write your role (for example: Nurse manager, 5 West).")
    if matrix is None:
        errors.append("There is no priority matrix to sign off yet.")
    if leader is None and not errors:
        # A team with no leader named yet: whoever signs here is recorded as its leader.
        with page.attempt() as problems:
            leader = name_leader(
                page.db,
                team=team,
                name=values["name"],
                contact=values["contact"],
            )
        errors.extend(f"Contact: {p}." for p in problems)
    if errors:
        page.db.refresh(team)
        return page.render("signoff.html", status=400, errors=errors, **context)
    try:
        mark_used(page.db, claim)
    except BadLink as exc:
        return problem(page, exc.reason)
    signoff = record_signoff(
        page.db,
        team=team,
        decision=values["decision"],
        leader_name=values["name"],
        leader_role=values["role"],
        comment=values["comment"],
        via="web",
        leader=leader,
    )
    return page.render("signoff_done.html", team=team, signoff=signoff)
