"""Building blocks for the web tests: an app assembled from dash.web, people, cohorts, teams.

The app is exactly what dash/app/server.py mounts (web_routes + middleware), without the
webhooks or background workers, driven in-process by Starlette's TestClient.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dash.actions.coaches import add_coach
from dash.actions.cohorts import create_cohort
from dash.context import AppContext
from dash.models import Cohort, Membership, Organisation, Person, Team, Unit
from dash.models.teams import Role, TeamState
from dash.timeutil import utcnow
from dash.web import middleware, web_routes
from tests.support.people import reachable

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def web_app(ctx: AppContext) -> Starlette:
    app = Starlette(routes=web_routes(ctx), middleware=middleware(ctx))
    app.state.ctx = ctx
    return app


def client_for(ctx: AppContext, address: str = "testclient") -> TestClient:
    """A browser on the dashboard; `address` is the client address the app sees."""
    return TestClient(web_app(ctx), follow_redirects=False, client=(address, 50000))


def coach(
    s: Session, email: str, *, cohorts: list[Cohort] = (), admin: bool = False, name: str = ""
) -> Person:
    person = add_coach(
        s, email=email, name=name or email.split("@")[0].title(), password=PASSWORD, admin=admin
    )
    for cohort in cohorts:
        cohort.coaches.append(person)
    s.flush()
    return person


def cohort(
    s: Session, *, start: date | None = None, topic: str = "opioid-safety", name: str = ""
) -> Cohort:
    return create_cohort(
        s,
        topic=topic,
        start=start or utcnow().date() - timedelta(days=3),
        timezone="America/New_York",
        name=name or None,
    )


def team(
    s: Session,
    cohort_: Cohort,
    name: str,
    *,
    state: TeamState = TeamState.ENROLLED,
    members: list[Person] = (),
) -> Team:
    org = Organisation(name=f"{name} Hospital")
    s.add(org)
    s.flush()
    unit = Unit(organisation_id=org.id, name=name)
    s.add(unit)
    s.flush()
    t = Team(cohort_id=cohort_.id, unit_id=unit.id, name=name, state=state.value)
    if state == TeamState.ENROLLED:
        t.enrolled_at = utcnow()
    s.add(t)
    s.flush()
    for i, person in enumerate(members):
        s.add(
            Membership(
                team_id=t.id,
                person_id=person.id,
                role=Role.KEY_CONTACT.value if i == 0 else Role.MEMBER.value,
            )
        )
        if i == 0:
            t.key_contact_id = person.id
    s.flush()
    return t


def nurse(s: Session, name: str, console: str) -> Person:
    person = reachable(name=name, console=console)
    s.add(person)
    s.flush()
    return person


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


def login(client: TestClient, email: str, password: str = PASSWORD) -> None:
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 303, response.text


def post(client: TestClient, path: str, data: dict[str, str], *, form_page: str = "/") -> object:
    """POST like a browser: with the CSRF token from a page of this session."""
    token = csrf_of(client.get(form_page).text)
    return client.post(path, data={**data, "csrf": token})
