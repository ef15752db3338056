"""HTTP plumbing of the console: cookies, the security headers every answer carries, form bodies,
static files. No ledger access here."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

SESSION_COOKIE = "mpx_session"
SIGNIN_COOKIE = "mpx_signin"  # the sign-in form's CSRF secret, before there is a session
COOKIE_PATH = "/admin/"
MAX_FORM_BYTES = 8 * 1024
STATIC = Path(__file__).parent / "static"
# Scripts and styles only from this origin (no inline script at all: chart data travels as JSON in
# <script type="application/json">, which is never executed); no framing; forms post only here.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


class FormTooLarge(Exception):
    pass


def secure_headers(response: Response, *, cache: bool = False) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if not cache:
        response.headers["cache-control"] = "no-store"
    return response


def page(html: str, status: int = 200) -> Response:
    return secure_headers(HTMLResponse(html, status_code=status))


def redirect(location: str) -> Response:
    return secure_headers(RedirectResponse(location, status_code=303))


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=is_https(request))


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form body, read up to MAX_FORM_BYTES; the first value of each field counts."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge
    fields: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


def same_origin(request: Request) -> bool:
    """A browser's POST names where it comes from; refuse one from another site. (Requests without
    Origin come from non-browser clients, which CSRF does not concern, and still need the token.)"""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def safe_next(target: str | None) -> str | None:
    """A post-sign-in destination only within the console: never another site (`//evil`, `/\\evil`)."""
    if not target or not target.startswith(COOKIE_PATH) or "\\" in target or target.startswith("//"):
        return None
    if any(ord(char) < 0x20 for char in target):
        return None
    return target


def static_files() -> dict[str, tuple[bytes, str]]:
    """Every file the console serves under /admin/static/, read once: name -> (bytes, media type)."""
    files = {}
    for path in sorted(STATIC.rglob("*")):
        if path.is_file() and path.name != "SOURCE.json":
            media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if path.name == "LICENSE":
                media = "text/plain"
            files[path.relative_to(STATIC).as_posix()] = (path.read_bytes(), media)
    return files
