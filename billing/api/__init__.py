"""The ledger's admin HTTP API under /admin/v1/ (bearer admin token)."""

from modelplex.billing.api.app import build_admin_app

__all__ = ["build_admin_app"]
