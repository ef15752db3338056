"""What the operator and the gateway share to reach the Kubernetes API: who they are and where it is."""
