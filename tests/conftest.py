"""Shared pytest set-up: fixtures live in plugin modules under tests/mpxtest/."""

pytest_plugins: list[str] = [
    "mpxtest.cluster",
    "mpxtest.engine",
    "mpxtest.postgres",
    "mpxtest.redis",
    "mpxtest.upstream",
]
