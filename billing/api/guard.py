"""The admin API's front door: every HTTP request, whatever its path (the routes, the OpenAPI schema,
the docs page, paths that do not exist), must carry the admin bearer token before the app sees it.

Checking ahead of routing means a caller without the token learns nothing: not which routes exist,
not how their parameters are validated. Without a configured token the admin API is off (404).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi.responses import JSONResponse

from modelplex.billing.api.errors import error_response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_SETTING = "MODELPLEX_BILLING_ADMIN_TOKEN"


def _refusal(headers: list[tuple[bytes, bytes]], expected: bytes) -> JSONResponse | None:
    """Why a request with these headers may not reach the admin API, or None when it may."""
    given = [value for name, value in headers if name == b"authorization"]
    if len(given) > 1:
        # Two credentials are ambiguous: proxies and frameworks disagree on which one counts.
        return error_response(400, "send one Authorization header, not several", None, "duplicate_header")
    scheme, _, token = (given[0] if given else b"").partition(b" ")
    # compare_digest over the whole token, whatever its length or content: no early exit to time
    if not hmac.compare_digest(token.strip(), expected) or scheme.lower() != b"bearer":
        return error_response(401, "a valid admin bearer token is required", None, "invalid_admin_token")
    return None


class AdminGuard:
    """Lets an HTTP request through to `app` only with `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self._app = app
        self._expected = None if token is None else token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self._expected is None:
            off = error_response(404, f"the admin API is off: set {TOKEN_SETTING}", None, "admin_api_off")
            await off(scope, receive, send)
            return
        refusal = _refusal(list(scope["headers"]), self._expected)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._app(scope, receive, send)
