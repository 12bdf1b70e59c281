"""A database failure as one line an operator can act on, never showing the URL's password.

The command line (dash/app/cli/main.py) turns any database error into this line and exit status 1;
`dash init` runs at boot under systemd, so whatever it prints lands in the journal.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote, unquote

from dash.errors import UserError

_USERINFO = re.compile(r"://[^:/@\s]*:([^@\s]*)@")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def masked_url(url: str) -> str:
    """The URL with its password as ***, as SQLAlchemy shows it; only the scheme if unparseable."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: show nothing that might be a secret
        scheme = url.split("://", 1)[0] if "://" in url else ""
        return f"{scheme}://…" if _SCHEME.fullmatch(scheme) else "…"


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:
        found = _USERINFO.search(url)
        password = unquote(found.group(1)) if found else None
    return str(password) if password else None


def redact(text: str, url: str) -> str:
    """`text` (a driver's message) with `url` masked and its password, in any spelling, as ***."""
    out = text.replace(url, masked_url(url))
    password = _password(url)
    if password:
        for form in sorted({password, quote(password, safe=""), quote(password)}, key=len)[::-1]:
            out = out.replace(form, "***")
    return out


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
        if isinstance(orig, BaseException) and orig not in seen:
            seen.append(orig)
        current = current.__cause__ or current.__context__
    return seen


def one_line(exc: BaseException, url: str) -> str:
    """The first line of an error's message, without the password of `url`."""
    return redact(_first_line(exc), url)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else exc.__class__.__name__


def _say(problem: str, **context: object) -> str:
    from dash.texts import render

    return " ".join(render("database_problem", problem=problem, **context).split())


def _sqlite_problem(path: Path, detail: str) -> str:
    folder, user = path.parent, user_of_process()
    if "readonly database" in detail or "read-only" in detail:
        return _say("read_only", path=path, folder=folder, user=user)
    if "database is locked" in detail:
        return _say("locked", path=path)
    if "unable to open database file" in detail:
        if not folder.is_dir():
            return _say("no_folder", path=path, folder=folder)
        if not path.exists():
            return _say("folder_not_writable", path=path, folder=folder, user=user)
        return _say("cannot_open", path=path, folder=folder, user=user)
    return _say("sqlite_other", path=path, detail=detail)


def database_problem(exc: BaseException, url: str) -> str | None:
    """One line saying what is wrong with the database at `url` and what to do, or None when
    `exc` is not about reaching or opening it (a constraint violation is a bug: traceback)."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    from dash.db import sqlite_file

    chain = _chain(exc)
    shown = masked_url(url)
    if any(isinstance(e, sa_exc.NoSuchModuleError) for e in chain):
        return _say("unknown_driver", url=shown)
    if any(isinstance(e, sa_exc.ArgumentError | ValueError) for e in chain):
        try:
            make_url(url)
        except Exception:
            return _say("bad_url", url=shown)
    unreachable = next(
        (
            e
            for e in chain
            if isinstance(e, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError)
            or type(e) is sqlite3.DatabaseError  # "file is not a database"
            or (
                type(e).__module__.split(".")[0] == "psycopg"
                and type(e).__name__ in ("OperationalError", "InterfaceError")
            )
        ),
        None,
    )
    if unreachable is None:
        return None
    driver = getattr(unreachable, "orig", None) or unreachable
    detail = one_line(driver, url)
    path = sqlite_file(url)
    if path is not None:
        return _sqlite_problem(path, detail)
    return _say("cannot_connect", url=shown, detail=detail)


def configured_database_problem(exc: BaseException) -> str | None:
    """database_problem() for the configured database; None if the settings cannot be read."""
    try:
        from dash.settings import get_settings

        url = get_settings().database_url
    except Exception:
        return None
    return database_problem(exc, url)


def ensure_writable(db: object) -> None:
    """Stop a command that changes the database before it starts, if the file is read-only."""
    from dash.db import Database, sqlite_file

    if isinstance(db, Database) and db.read_only:
        path = sqlite_file(db.url)
        assert path is not None
        raise UserError(_say("read_only", path=path, folder=path.parent, user=user_of_process()))


def user_of_process() -> str:
    """Who this process runs as, for "check permissions" messages."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())
