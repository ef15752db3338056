"""Per-tenant limits: requests and tokens per minute, concurrency. In-process or shared through Redis."""
