"""OpenAI-style error bodies for the admin API: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from modelplex.billing.errors import LedgerError

_TYPES = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error"}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """Every error the admin API answers."""

    error: ErrorDetail


_ERROR = {"model": ErrorBody}
# Documented on every operation, so the published schema describes what clients actually get.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "The body is not JSON"},
    401: {**_ERROR, "description": "No valid admin bearer token"},
    404: {**_ERROR, "description": "Unknown tenant, key, plan, model or path"},
    405: {**_ERROR, "description": "Method not allowed"},
    409: {**_ERROR, "description": "Clashes with what is stored"},
    422: {**_ERROR, "description": "A value out of range or of the wrong type; `param` names the field"},
}


def error_response(status: int, message: str, param: str | None, code: str | None) -> JSONResponse:
    body = {
        "message": message,
        "type": _TYPES.get(status, "invalid_request_error"),
        "param": param,
        "code": code,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _param(location: tuple[Any, ...]) -> str | None:
    """The field an error is about: the last name in its location (body.inputPer1M: inputPer1M)."""
    names = [
        str(part) for part in location if isinstance(part, str) and part not in {"body", "query", "path"}
    ]
    return names[-1] if names else None


async def _ledger_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, LedgerError)
    return error_response(error.status, error.message, error.param, error.code)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        return error_response(400, "the body is not valid JSON", None, "invalid_json")
    param = _param(tuple(first.get("loc", ())))
    message = f"{param}: {first.get('msg', 'invalid value')}" if param else str(first.get("msg"))
    return error_response(422, message, param, "invalid_value")


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = {401: "invalid_admin_token", 404: "not_found", 405: "method_not_allowed"}.get(error.status_code)
    return error_response(error.status_code, str(error.detail), None, code)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
