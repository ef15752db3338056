"""The OpenAI-compatible, tenant-aware, metered gateway."""
