"""Names of the API and the labels/annotations that other components rely on.

The gateway discovers serving endpoints with these keys; they are part of the public contract:

- Every object the operator creates carries `app.kubernetes.io/managed-by=modelplex-operator` and
  `modelplex.dev/deployment=<ModelDeployment name>` (also on every pod).
- The Service of a ModelDeployment is named after it and carries `modelplex.dev/component=endpoint`;
  its port `http` serves vLLM's OpenAI API. Its annotation `modelplex.dev/served-name` holds the
  model id tenants send (a label value cannot hold every model id).
- Pods that serve the API (the pod of a single-node replica, the leader of a multi-node group) carry
  `modelplex.dev/serving=true`; the Service and `status.selector` select exactly those pods.
- `modelplex.dev/role` is `leader` or `worker` on every engine pod.
"""

from __future__ import annotations

GROUP = "modelplex.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAME = "md"
CRD_NAME = f"{PLURAL}.{GROUP}"

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "modelplex-operator"
APP_NAME = "app.kubernetes.io/name"
APP_NAME_VALUE = "vllm"
INSTANCE = "app.kubernetes.io/instance"

DEPLOYMENT = f"{GROUP}/deployment"
COMPONENT = f"{GROUP}/component"
SERVING = f"{GROUP}/serving"
ROLE = f"{GROUP}/role"
SERVED_NAME_ANNOTATION = f"{GROUP}/served-name"

COMPONENT_ENGINE = "engine"
COMPONENT_ENDPOINT = "endpoint"
COMPONENT_CACHE = "model-cache"
ROLE_LEADER = "leader"
ROLE_WORKER = "worker"

HTTP_PORT = 8000
HTTP_PORT_NAME = "http"


def owner_labels(name: str) -> dict[str, str]:
    """Labels on every child of the ModelDeployment `name`."""
    return {MANAGED_BY: MANAGED_BY_VALUE, APP_NAME: APP_NAME_VALUE, INSTANCE: name, DEPLOYMENT: name}


def serving_selector(name: str) -> dict[str, str]:
    """Selects the pods that answer API requests for the ModelDeployment `name`."""
    return {DEPLOYMENT: name, SERVING: "true"}


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
