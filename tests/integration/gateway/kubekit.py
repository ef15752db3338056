"""Kept for test_kube_discovery.py and test_kube_credentials.py, which import these names from here,
while the Kubernetes client change edits them: their home is tests/mpxtest/ (cluster, operatorproc,
discovery), loaded for every test by tests/conftest.py. Delete this module once those two import
nothing from it.
"""

from mpxtest.cluster import crd, dynamic, free_gpus, gateway_kubeconfig, namespace
from mpxtest.discovery import RunningSource, discovered, model_deployment, serving_pods
from mpxtest.operatorproc import MODELPLEX, operator

__all__ = [
    "MODELPLEX",
    "RunningSource",
    "crd",
    "discovered",
    "dynamic",
    "free_gpus",
    "gateway_kubeconfig",
    "model_deployment",
    "namespace",
    "operator",
    "serving_pods",
]
