"""Alembic migrations of the ledger schema (run by `modelplex ledger migrate` or at start)."""
