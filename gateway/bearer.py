"""Bearer-token checks for the gateway's own tokens (the metrics token), in constant time."""

from __future__ import annotations

import hmac

from modelplex.gateway.asgi import Scope


def authorization_values(scope: Scope) -> list[bytes]:
    return [bytes(value) for name, value in scope["headers"] if name == b"authorization"]


def bearer_matches(scope: Scope, expected: bytes) -> bool:
    """Exactly one `Authorization: Bearer <expected>` header. Two are refused: proxies and frameworks
    disagree on which one counts."""
    given = authorization_values(scope)
    if len(given) != 1:
        return False
    scheme, _, token = given[0].partition(b" ")
    # compare_digest whatever the scheme, so the time taken does not tell a wrong scheme from a wrong token
    matches = hmac.compare_digest(token.strip(), expected)
    return matches and scheme.lower() == b"bearer"
