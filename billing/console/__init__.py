"""The operators' and tenants' web console, served by the admin app under /admin/ (server-rendered)."""
