"""The endpoints an EndpointSlice lists on one named port (pure): what the gateway routes to and
what the autoscaler scrapes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class SliceEndpoint:
    url: str  # http://host:port
    id: str  # the pod's name, else host:port
    ready: bool


def slice_endpoints(body: dict[str, Any], port_name: str) -> Iterator[SliceEndpoint]:
    """The endpoints of one slice on port `port_name`; FQDN slices name no pod address and are skipped."""
    family = body.get("addressType")
    ports = [p.get("port") for p in body.get("ports") or [] if p.get("name") == port_name]
    if family not in ("IPv4", "IPv6") or not ports or ports[0] is None:
        return
    for endpoint in body.get("endpoints") or []:
        addresses = endpoint.get("addresses") or []
        if not addresses:
            continue
        host = f"[{addresses[0]}]" if family == "IPv6" else addresses[0]
        # An unset `ready` means unknown, which the EndpointSlice API says to treat as ready.
        ready = (endpoint.get("conditions") or {}).get("ready") is not False
        pod = (endpoint.get("targetRef") or {}).get("name")
        yield SliceEndpoint(url=f"http://{host}:{ports[0]}", id=pod or f"{host}:{ports[0]}", ready=ready)
