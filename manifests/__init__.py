"""Generated Kubernetes manifests: the RBAC rules of each identity (the one source) and the writer of
every file made from them (`python -m modelplex.manifests.generate`)."""
