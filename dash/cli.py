"""The `dash` command line: the composition root that wires dash, bots and scheduler.

Exit status: 0 on success, 1 on a user error (one line on stderr), 2 on usage errors.
"""

from __future__ import annotations

import sys
from datetime import date, time
from importlib import import_module
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dash.errors import UserError


class DashGroup(TyperGroup):
    """Turns a UserError or a database that cannot be used (missing, read-only, unreachable)
    anywhere below into one line on stderr and exit status 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            from dash.dbproblems import configured_database_problem

            problem = configured_database_problem(exc)
            if problem is None:
                raise
            typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=DashGroup,
    help="Improvement Dash: run two-week improvement sprints for hospital unit teams over chat.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
cohort_app = typer.Typer(help="Create and inspect cohorts.", no_args_is_help=True)
coach_app = typer.Typer(help="Manage coach accounts.", no_args_is_help=True)
app.add_typer(cohort_app, name="cohort")
app.add_typer(coach_app, name="coach")


def _register_subcommands() -> None:
    """Commands whose code lives beside the parts they drive."""
    from dash.cli_curriculum import app as curriculum_app

    app.add_typer(curriculum_app, name="curriculum", help="List, validate and show curricula.")
    for module in (
        "dash.cli_chat",
        "dash.cli_demo",
        "dash.cli_dispatch",
        "dash.cli_report",
        "dash.cli_ops",
        "dash.cli_workers",
    ):
        import_module(module).register(app)
    import_module("dash.cli_cohorts").register(cohort_app)


def _database():  # type: ignore[no-untyped-def]
    from dash.db import database_from
    from dash.settings import get_settings

    return database_from(get_settings())


def _ready_database(*, writes: bool = True):  # type: ignore[no-untyped-def]
    """The database, migrated to the newest revision (commands other than init need it).

    A command that `writes` stops here, before any work, if the file is read-only for us."""
    from dash import migrate
    from dash.dbproblems import ensure_writable

    db = _database()
    if migrate.current_revision(db) != migrate.head_revision(db):
        raise UserError("the database is not initialised or is out of date: run `dash init`")
    if writes:
        ensure_writable(db)
    return db


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise UserError(f"{value!r} is not a date: use YYYY-MM-DD") from exc


def _parse_time(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise UserError(f"{value!r} is not a time: use HH:MM (24-hour)") from exc


@app.command()
def init() -> None:
    """Create or upgrade the database to the newest migration (safe to repeat)."""
    from dash import migrate
    from dash.db import secret_key
    from dash.settings import get_settings

    settings = get_settings()
    db = _database()
    try:
        before, after = migrate.upgrade(db)
    except Exception as exc:  # the database URL is wrong or unreachable, or a migration failed
        from dash.dbproblems import database_problem, masked_url, one_line

        problem = database_problem(exc, settings.database_url)
        raise UserError(
            problem
            or f"cannot migrate {masked_url(settings.database_url)}: "
            f"{exc.__class__.__name__}: {one_line(exc, settings.database_url)}"
        ) from exc
    secret_key(db, settings)
    if before == after:
        typer.echo(
            f"database {db.engine.url.render_as_string(hide_password=True)} is up to date ({after})"
        )
    else:
        typer.echo(
            f"database {db.engine.url.render_as_string(hide_password=True)} "
            f"upgraded from {before or 'empty'} to {after}"
        )


@cohort_app.command("create")
def cohort_create(
    topic: Annotated[str, typer.Option(help="Curriculum topic, see `dash curriculum list`.")],
    start: Annotated[str, typer.Option(help="First day of the Dash, YYYY-MM-DD.")],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. America/New_York.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    weekdays: Annotated[str, typer.Option(help="Three session weekdays.")] = "mon,wed,fri",
    session_time: Annotated[
        str, typer.Option("--time", help="Session start, local HH:MM.")
    ] = "12:30",
    minutes: Annotated[int, typer.Option(help="Session length in minutes.")] = 45,
    join_link: Annotated[str | None, typer.Option(help="Video-call link for the sessions.")] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Create it even if the start is long past, far ahead or not a session day."
        ),
    ] = False,
) -> None:
    """Create a cohort; the last line is `cohort <id> code <CODE>`."""
    from dash.actions.cohorts import create_cohort
    from dash.cli_cohorts import check_start
    from dash.timeutil import local_date, utcnow

    db = _ready_database()
    with db.transaction() as s:
        cohort = create_cohort(
            s,
            topic=topic,
            start=_parse_date(start),
            timezone=timezone,
            name=name,
            weekdays=weekdays,
            session_time=_parse_time(session_time),
            session_minutes=minutes,
            join_link=join_link,
        )
        # Checked once the zone and weekdays are known good; refusing rolls the cohort back.
        check = check_start(
            cohort.start_date, cohort.weekdays, local_date(utcnow(), cohort.timezone)
        )
        if check.refusals and not force:
            raise UserError(check.refusals[0])
        for line in check.refusals + check.notes:
            typer.echo(f"warning: {line}", err=True)
        typer.echo(
            f"{cohort.name}: {cohort.topic} v{cohort.curriculum_version}, "
            f"starts {cohort.start_date.isoformat()} ({cohort.timezone})"
        )
        typer.echo(f"key contacts enrol by sending: JOIN {cohort.enrolment_code}")
        typer.echo(f"cohort {cohort.id} code {cohort.enrolment_code}")


@coach_app.command("add")
def coach_add(
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
    db = _ready_database()
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


@coach_app.command("remove")
def coach_remove(
    email: Annotated[str, typer.Option(help="Log-in e-mail of the coach or admin.")],
) -> None:
    """Take away a coach's dashboard access: cohorts, password and every open session end now.
    Their replies stay in the threads; `dash coach add` gives access again."""
    from dash.actions.coaches import remove_coach

    db = _ready_database()
    with db.transaction() as s:
        person = remove_coach(s, email=email)
        typer.echo(f"removed coach {person.id} {person.email}; their sessions have ended")


@app.command()
def export(
    cohort: Annotated[int, typer.Option(help="Cohort id.")],
    what: Annotated[str, typer.Option(help="measures, pdsa or messages.")],
) -> None:
    """Write a cohort's data as CSV on stdout, header row first."""
    from dash.exports import write_export

    db = _ready_database(writes=False)
    with db.transaction() as s:
        write_export(s, cohort, what, sys.stdout)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="web, tick, delivery (repeat; default DASH_SERVE_ROLES, all three). Webhooks "
            "and /healthz are always served.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes sharing the port, each running the roles (default DASH_SERVE_WORKERS).",
        ),
    ] = None,
) -> None:
    """Run the dashboard, webhooks, scheduler and outbound delivery."""
    import os

    import uvicorn

    from dash import migrate
    from dash.context import AppContext
    from dash.dbproblems import ensure_writable
    from dash.heap import settle_heap
    from dash.links import local_base_url
    from dash.logs import configure_logging
    from dash.server import create_app, parse_roles
    from dash.settings import get_settings

    settings = get_settings()
    try:
        roles = parse_roles(role or settings.serve_roles)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    processes = workers or settings.serve_workers
    configure_logging(settings.log_level)
    db = _database()
    ensure_writable(db)
    migrate.upgrade(db)  # a fresh machine works with no set-up step
    own = local_base_url(host, port)
    if "public_url" in settings.model_fields_set:
        links = f"links use DASH_PUBLIC_URL {settings.public_url}"
    else:
        # Links this server writes (log-in, sign-off, charts) must name its own port, in
        # this process and in the workers it starts, which read the environment afresh.
        os.environ["DASH_PUBLIC_URL"] = own
        get_settings.cache_clear()
        settings = get_settings()
        links = f"links use {own} (DASH_PUBLIC_URL is not set)"
    typer.echo(
        f"Improvement Dash on {own}; {links}; "
        f"roles: {', '.join(roles)}; processes: {processes}"
    )
    if processes == 1:
        app_ = create_app(AppContext.from_settings(settings, db), roles=roles)
        settle_heap()
        uvicorn.run(app_, host=host, port=port, log_config=None, access_log=False)
        return
    db.dispose()
    # Each worker reads its settings afresh: pass the roles chosen here down to them.
    os.environ["DASH_SERVE_ROLES"] = ",".join(roles)
    uvicorn.run(
        "dash.server:app_from_settings",
        factory=True,
        workers=processes,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )


_register_subcommands()


def main() -> None:
    app(prog_name="dash")


__all__ = ["app", "main"]
