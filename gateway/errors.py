"""OpenAI-style errors: `{"error": {"message", "type", "param", "code"}}` with the right HTTP status."""

from __future__ import annotations

import json


class GatewayError(Exception):
    """An error answered to the client; raised anywhere in request handling."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return json.dumps({"error": error}).encode()


def unauthorized(message: str = "Invalid or missing API key.") -> GatewayError:
    return GatewayError(401, message, "authentication_error", "invalid_api_key")


def forbidden(message: str, code: str = "permission_denied") -> GatewayError:
    return GatewayError(403, message, "permission_error", code)


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        404, f"The model '{model}' does not exist.", "invalid_request_error", "model_not_found", "model"
    )


def not_found(path: str) -> GatewayError:
    return GatewayError(404, f"No route for {path}.", "invalid_request_error", "not_found")


def method_not_allowed(method: str) -> GatewayError:
    return GatewayError(
        405, f"Method {method} is not allowed here.", "invalid_request_error", "method_not_allowed"
    )


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", "invalid_request", param)


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        413, f"The request body exceeds {limit} bytes.", "invalid_request_error", "request_too_large"
    )


def rate_limited(limit: str, retry_after: float) -> GatewayError:
    return GatewayError(
        429,
        f"Rate limit reached for {limit}; retry after {_seconds(retry_after)} s.",
        "rate_limit_error",
        "rate_limit_exceeded",
        headers={"retry-after": str(_seconds(retry_after))},
    )


def budget_exhausted(message: str, retry_after: float, final: bool) -> GatewayError:
    # 429 with OpenAI's own code for an exhausted quota. `final`: only the next month (or a bigger
    # budget) helps, and `x-should-retry: false` stops the official client from retrying; otherwise
    # requests in flight hold the budget and may give some of it back when they end.
    headers = {"retry-after": str(_seconds(retry_after))}
    if final:
        headers["x-should-retry"] = "false"
    return GatewayError(429, message, "insufficient_quota", "insufficient_quota", headers=headers)


def no_capacity(model: str, retry_after: float) -> GatewayError:
    return GatewayError(
        503,
        f"No capacity for model '{model}' right now.",
        "server_error",
        "no_capacity",
        headers={"retry-after": str(_seconds(retry_after))},
    )


def engine_error(error: object) -> GatewayError:
    """An error the engine reported inside a stream, in the OpenAI shape; its status when it gave one."""
    fields = error if isinstance(error, dict) else {}
    code = fields.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else 502
    message, kind = fields.get("message"), fields.get("type")
    return GatewayError(
        status,
        message if isinstance(message, str) else "The model failed to answer.",
        kind if isinstance(kind, str) else "server_error",
        "upstream_error",
    )


def upstream_failed(model: str) -> GatewayError:
    return GatewayError(502, f"The model '{model}' failed to answer.", "server_error", "upstream_error")


def ledger_unreachable(what: str) -> GatewayError:
    return GatewayError(
        503,
        f"Cannot {what} now: the ledger is unreachable. Try again shortly.",
        "server_error",
        "ledger_unavailable",
        headers={"retry-after": "5"},
    )


def journal_unavailable() -> GatewayError:
    return GatewayError(
        503,
        "The gateway cannot record usage right now (its journal's disk is full or failing), so it "
        "serves nothing it could not bill. Try again shortly.",
        "server_error",
        "usage_journal_unavailable",
        headers={"retry-after": "5"},
    )


def draining() -> GatewayError:
    return GatewayError(
        503, "The gateway is shutting down.", "server_error", "shutting_down", headers={"retry-after": "1"}
    )


def _seconds(value: float) -> int:
    return max(1, int(value + 0.999))
