"""Ledger errors. Each names the field at fault so the CLI and the admin API can say which."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: a request the ledger refuses. `param` names the offending field."""

    status = 400
    code = "invalid_value"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidInput(LedgerError):
    """A value that can never be accepted as given (negative price, unknown currency, bad period)."""

    status = 422


class NotFound(LedgerError):
    """An unknown tenant, key, plan or model."""

    status = 404
    code = "not_found"


class Conflict(LedgerError):
    """A value that clashes with what is stored (duplicate name, retroactive price)."""

    status = 409
    code = "conflict"
