"""The one error of the Kubernetes transport: what the API server refused, and why."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    """An answer of 400 or more. `reason` is the Status object's machine-readable reason (NotFound,
    Conflict, Gone, Invalid, Forbidden, ...), `message` its human one."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class Gone(ApiError):
    """410: the resourceVersion left the API server's window; a watch must list again."""


def api_error(status: int, body: Any) -> ApiError:
    """The error for an answer with `status`; `body` is the decoded Status object, or text."""
    if isinstance(body, dict):
        reason = str(body.get("reason") or _phrase(status))
        message = str(body.get("message") or "")
    else:
        reason, message = _phrase(status), str(body or "").strip()
    kind = Gone if status == 410 else ApiError
    return kind(status, reason, message)


def _phrase(status: int) -> str:
    """The reason a server without a Status body would have meant (404 -> NotFound)."""
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return "Unknown"
