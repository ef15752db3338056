"""The autoscaler replay benchmark's parts: seeded arrival traces, a simulated vLLM fleet, controllers.

`bench/autoscaler_replay.py` is the entry point; the sources of every figure are in its docstring and in
docs/benchmarks.md ("Autoscaler replay").
"""
