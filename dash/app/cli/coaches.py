"""`dash coach add` and `dash coach remove`: dashboard accounts for coaches and admins."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dash.app.cli.common import ready_database
from dash.errors import UserError


def add_command(
    email: Annotated[str, typer.Option(help="Log-in e-mail.")],
    name: Annotated[str, typer.Option(help="Name shown to teams.")],
    cohort: Annotated[int | None, typer.Option(help="Assign to this cohort id.")] = None,
    admin: Annotated[bool, typer.Option(help="May see and change every cohort.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing coach's password with the piped one.")
    ] = False,
) -> None:
    """Create a coach. A password piped on stdin is used; otherwise a one-time log-in link
    is printed."""
    from sqlalchemy import func, select

    from dash.actions.coaches import add_coach, send_login_link
    from dash.context import AppContext
    from dash.links import link_url
    from dash.models import Person
    from dash.reach import enabled_channels
    from dash.settings import get_settings

    password = None
    if not sys.stdin.isatty():
        piped = sys.stdin.readline().rstrip("\r\n")
        password = piped or None
    db = ready_database()
    settings = get_settings()
    with db.transaction() as s:
        existing = s.execute(
            select(Person).where(
                func.lower(Person.email) == email.strip().lower(),
                Person.is_coach | Person.is_admin,
            )
        ).scalar_one_or_none()
        if existing is not None and existing.password_hash and password is not None and not force:
            raise UserError(
                f"{existing.email} is already coach {existing.id} ({existing.name}): a piped "
                "password would replace theirs; add --force to do that, or pipe nothing to "
                "print a one-time log-in link"
            )
        person = add_coach(
            s, email=email, name=name, password=password, cohort_id=cohort, admin=admin
        )
        if existing is None:
            typer.echo(f"coach {person.id} {person.email}")
        else:
            typer.echo(
                f"coach {person.id} {person.email} already existed: name {person.name!r}"
                + (f", now also in cohort {cohort}" if cohort is not None else "")
                + ("; password replaced" if password is not None else "; password kept")
            )
        person_id = person.id
    if password is None:
        ctx = AppContext.from_settings(settings, db)
        url = link_url(settings.public_url, ctx.secret, "login", person_id)
        typer.echo(f"one-time log-in link (valid {settings.link_ttl_hours} h): {url}")
        with db.transaction() as s:
            sent_by = send_login_link(
                s,
                s.get(Person, person_id),
                url,
                hours=settings.link_ttl_hours,
                enabled=enabled_channels(ctx),
            )
        if sent_by:
            typer.echo(f"also sent to them by {sent_by}")


def remove_command(
    email: Annotated[str, typer.Option(help="Log-in e-mail of the coach or admin.")],
) -> None:
    """Take away a coach's dashboard access: cohorts, password and every open session end now.
    Their replies stay in the threads; `dash coach add` gives access again."""
    from dash.actions.coaches import remove_coach

    db = ready_database()
    with db.transaction() as s:
        person = remove_coach(s, email=email)
        typer.echo(f"removed coach {person.id} {person.email}; their sessions have ended")
