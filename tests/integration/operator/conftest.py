"""Kept for test_credentials.py, which imports OperatorProcess from here, while the Kubernetes client
change edits it: the operator's fixtures live in tests/mpxtest/operatorproc.py. Delete this module once
test_credentials imports OperatorProcess from mpxtest.operatorproc.
"""

from mpxtest.operatorproc import OperatorProcess

__all__ = ["OperatorProcess"]
