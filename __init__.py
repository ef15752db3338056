"""Modelplex: multi-tenant model-as-a-service on Kubernetes.

The repository root is this package; its folders `crds`, `operator`, `gateway` and `billing`
are the subpackages `modelplex.crds`, `modelplex.operator`, `modelplex.gateway` and
`modelplex.billing`.
"""

__version__ = "0.1.0"
