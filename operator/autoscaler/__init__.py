"""The autoscaler: a pure policy (policy.py) and the loops that feed it signals and write replicas."""
