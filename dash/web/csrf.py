"""CSRF protection: one random token per browser session, required in every POSTed form."""

from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

FIELD = "csrf"


def csrf_token(request: Request) -> str:
    """The session's token, created on first use (templates put it in each form)."""
    token = request.session.get(FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[FIELD] = token
    return str(token)


def check_csrf(request: Request, form: FormData) -> None:
    """403 unless the form carries this session's token (so other sites cannot post for us)."""
    expected = request.session.get(FIELD)
    sent = form.get(FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, str(expected)):
        raise HTTPException(403, "This form has expired or did not come from this site.")
