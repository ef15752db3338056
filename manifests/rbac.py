"""The one source of RBAC for the operator and the gateway.

`deploy/operator/rbac.yaml`, `deploy/gateway/rbac.yaml` and the chart's RBAC templates are written
from these rules by `python -m modelplex.manifests.generate`; a test fails when any of them is stale.
Each rule grants only the verbs the component uses (no get: both read everything from watch streams).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelplex.crds.labels import GROUP, PLURAL

WATCH = ("list", "watch")
OWN = ("list", "watch", "create", "patch", "delete")  # server-side apply creates through patch + create


@dataclass(frozen=True)
class Rule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]

    def to_manifest(self) -> dict[str, list[str]]:
        return {
            "apiGroups": list(self.api_groups),
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


@dataclass(frozen=True)
class Identity:
    """A component's ServiceAccount: its cluster-wide rules and those in its own namespace only."""

    component: str  # operator | gateway; the objects are named modelplex-<component>
    purpose: str  # the comment on top of the plain manifest
    cluster_rules: tuple[Rule, ...]
    namespace_rules: tuple[Rule, ...] = ()


OPERATOR = Identity(
    component="operator",
    purpose="""\
The operator's identity and exactly the verbs it uses:
- list/watch everything it observes (kopf's watch streams; no get: the operator reads from them);
- create and patch (server-side apply; creating through apply needs both) and delete on the children it owns;
- patch on modeldeployments/status; create on events;
- list/watch on nodes (cluster-wide, read only): the will-it-fit check reads each GPU node's
  nvidia.com/gpu.memory and nvidia.com/gpu.product labels when resources.gpuMemory is not declared;
- the autoscaler: patch on modeldeployments/scale (spec.replicas only), and list/watch on the
  EndpointSlices of the gateway Service, in the gateway's namespace only (a Role), to find the
  gateways whose queues it reads.
No Secrets, no ConfigMaps, nothing else.""",
    cluster_rules=(
        Rule((GROUP,), (PLURAL,), WATCH),
        Rule((GROUP,), (f"{PLURAL}/status", f"{PLURAL}/scale"), ("patch",)),
        Rule(("apps",), ("deployments",), OWN),
        Rule(("leaderworkerset.x-k8s.io",), ("leaderworkersets",), OWN),
        Rule(("",), ("services", "persistentvolumeclaims"), OWN),
        Rule(("policy",), ("poddisruptionbudgets",), OWN),
        Rule(("",), ("pods",), WATCH),
        Rule(("",), ("events",), ("create",)),
        Rule(("",), ("nodes",), WATCH),
    ),
    namespace_rules=(Rule(("discovery.k8s.io",), ("endpointslices",), WATCH),),
)

GATEWAY = Identity(
    component="gateway",
    purpose="""\
The gateway's identity and exactly what Kubernetes discovery (`--discovery kubernetes`) reads:
list/watch on ModelDeployments and on EndpointSlices (the ready pod addresses of their Services).
No get (everything comes from the watch streams), no pods, no secrets, no writes.
To watch one namespace only (`--namespace NS`), bind the same ClusterRole with a RoleBinding in NS
instead of the ClusterRoleBinding below.""",
    cluster_rules=(
        Rule((GROUP,), (PLURAL,), WATCH),
        Rule(("discovery.k8s.io",), ("endpointslices",), WATCH),
    ),
)

IDENTITIES = (OPERATOR, GATEWAY)
