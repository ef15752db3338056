"""The gateway's /metrics page: Prometheus text, behind the metrics token when one is configured."""

from __future__ import annotations

from pydantic import SecretStr

from modelplex.gateway.asgi import Receive, Scope, Send, send_bytes, send_error
from modelplex.gateway.bearer import bearer_matches
from modelplex.gateway.errors import GatewayError
from modelplex.gateway.metrics import GatewayMetrics

PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"


def metrics_unauthorized() -> GatewayError:
    return GatewayError(
        401,
        "The metrics token is required: Authorization: Bearer <MODELPLEX_GATEWAY_METRICS_TOKEN>.",
        "authentication_error",
        "invalid_metrics_token",
        headers={"WWW-Authenticate": "Bearer"},
    )


class MetricsPage:
    def __init__(self, metrics: GatewayMetrics, token: SecretStr | None) -> None:
        self._metrics = metrics
        self._expected = None if token is None else token.get_secret_value().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._expected is not None and not bearer_matches(scope, self._expected):
            await send_error(send, metrics_unauthorized())
            return
        await send_bytes(send, 200, self._metrics.render(), PROMETHEUS)
