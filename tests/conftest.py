"""Shared pytest set-up: fixtures live in plugin modules under tests/mpxtest/."""

import pytest

# Plugins import one another and their helpers (mpxtest.wait): rewrite asserts in all of them.
pytest.register_assert_rewrite("mpxtest")

pytest_plugins: list[str] = [
    "mpxtest.browser",
    "mpxtest.canary",
    "mpxtest.cluster",
    "mpxtest.discovery",
    "mpxtest.engine",
    "mpxtest.gatewayproc",
    "mpxtest.helm",
    "mpxtest.ledger",
    "mpxtest.metricsproxy",
    "mpxtest.operatorproc",
    "mpxtest.postgres",
    "mpxtest.prometheus",
    "mpxtest.redis",
    "mpxtest.upstream",
]
