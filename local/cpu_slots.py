"""Which cores each local CPU engine computes on, so that replicas on one machine do not share them.

vLLM's CPU backend binds an engine's OpenMP threads itself (`VLLM_CPU_OMP_THREADS_BIND=auto`: every
core but one, counted from the first), so two engines started that way compute on the same cores and a
second replica adds no capacity. The pool gives each running worker a slot and each slot its own
cores; a machine planned for one engine keeps vLLM's choice. Pure.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from modelplex.local.templates import WorkerTemplate

BIND_VARIABLE = "VLLM_CPU_OMP_THREADS_BIND"


def planned_slots(templates: Iterable[WorkerTemplate]) -> int:
    """How many engines may run at once: each deployment's maxReplicas when it scales, else its
    replicas (a `modelplex scale` past that shares cores again rather than failing)."""
    total = 0
    for template in templates:
        scaling = template.manifest.deployment.spec.scaling
        total += template.replicas if scaling is None else max(scaling.max_replicas, template.replicas)
    return total


def omp_binding(slot: int, slots: int, cores: Sequence[int]) -> str | None:
    """The cores of `slot` among `slots` as vLLM's bind list ("3" or "4,5,6"); None: leave vLLM's own
    binding (one engine planned, or one core). More slots than cores share cores round the list."""
    if slots <= 1 or len(cores) <= 1:
        return None
    width = max(1, len(cores) // slots)
    first = (slot * width) % len(cores)
    return ",".join(str(core) for core in cores[first : first + width])


def usable_cores(environment: dict[str, str]) -> list[int] | None:
    """The cores this process may run on, or None when the user bound the engines already."""
    if BIND_VARIABLE in environment or BIND_VARIABLE in os.environ:
        return None
    return sorted(os.sched_getaffinity(0))
