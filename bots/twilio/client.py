"""Build the twilio REST client from settings values.

The twilio library has no base-URL setting: every request goes to ``https://*.twilio.com``
built inside the library. The supported seam is ``Client(http_client=...)``; our http client
rewrites the scheme and host to ``DASH_TWILIO_API_BASE`` (keeping path and query) so tests and
staging can point the real client at another server.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

__all__ = [
    "DEFAULT_API_BASE",
    "RebasingTwilioHttpClient",
    "make_async_twilio_client",
    "make_twilio_client",
    "rebase_url",
]

DEFAULT_API_BASE = "https://api.twilio.com"


def _normalise(api_base: str | None) -> str:
    return (api_base or DEFAULT_API_BASE).rstrip("/")


def rebase_url(url: str, api_base: str) -> str:
    """Swap scheme and host of a ``https://…twilio.com`` URL for ``api_base``.

    Any ``*.twilio.com`` host (``api.``, ``messaging.``, ``api.dublin.ie1.`` for regions and
    edges) is rewritten; other URLs (e.g. media on a CDN) are left alone. A path prefix in
    ``api_base`` is kept in front of the original path.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not (host == "twilio.com" or host.endswith(".twilio.com")):
        return url
    base = urlsplit(_normalise(api_base))
    return urlunsplit(
        (base.scheme, base.netloc, base.path + parts.path, parts.query, parts.fragment)
    )


class RebasingTwilioHttpClient(TwilioHttpClient):
    """TwilioHttpClient (requests) that sends ``*.twilio.com`` requests to ``api_base``."""

    def __init__(self, api_base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_base = _normalise(api_base)

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> Response:
        """Same signature as ``TwilioHttpClient.request``; only the URL changes."""
        return super().request(method, rebase_url(url, self.api_base), *args, **kwargs)


def make_twilio_client(
    account_sid: str,
    auth_token: str,
    api_base: str = DEFAULT_API_BASE,
    *,
    timeout: float = 15.0,
) -> Client:
    """A synchronous ``twilio.rest.Client``; rewrites hosts only when ``api_base`` is not Twilio's.

    ``timeout`` bounds each request (twilio's default is none at all, which would let one
    stuck connection stall the delivery worker).
    """
    if _normalise(api_base) == DEFAULT_API_BASE:
        http_client: TwilioHttpClient = TwilioHttpClient(timeout=timeout)
    else:
        http_client = RebasingTwilioHttpClient(api_base, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)


def make_async_twilio_client(
    account_sid: str,
    auth_token: str,
    api_base: str = DEFAULT_API_BASE,
    *,
    timeout: float = 15.0,
) -> Client:
    """A ``Client`` for the ``*_async`` methods (aiohttp); same URL rewriting.

    Must be created inside a running event loop (aiohttp's session binds to it); close it with
    ``await client.http_client.session.close()``.
    """
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    base = _normalise(api_base)

    class _RebasingAsync(AsyncTwilioHttpClient):
        async def request(  # type: ignore[override]
            self, method: str, url: str, *args: Any, **kwargs: Any
        ) -> Response:
            if base != DEFAULT_API_BASE:
                url = rebase_url(url, base)
            return await super().request(method, url, *args, **kwargs)

    return Client(account_sid, auth_token, http_client=_RebasingAsync(timeout=timeout))
