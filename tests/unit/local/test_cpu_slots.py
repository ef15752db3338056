"""Sharing a machine's cores between local CPU engines."""

from __future__ import annotations

import os

import pytest

from modelplex.local import cpu_slots
from modelplex.local.cpu_slots import omp_binding, usable_cores


@pytest.mark.parametrize(
    ("slot", "slots", "cores", "binding"),
    [
        (0, 1, [0, 1], None),  # one engine planned: vLLM's own binding
        (0, 2, [0], None),  # one core: nothing to share out
        (0, 2, [0, 1], "0"),
        (1, 2, [0, 1], "1"),
        (0, 2, list(range(8)), "0,1,2,3"),
        (1, 2, list(range(8)), "4,5,6,7"),
        (2, 3, list(range(8)), "4,5"),  # 8 // 3 = 2 each; the last two cores stay free for front ends
        (1, 2, [2, 5, 7, 9], "7,9"),  # the cores this process may use, not 0..n-1
        (2, 4, [0, 1], "0"),  # more engines than cores: round the list
        (3, 4, [0, 1], "1"),
        (2, 2, [0, 1], "0"),  # a slot past the plan (`modelplex scale` beyond it) shares too
    ],
)
def test_each_slot_gets_its_own_cores(slot: int, slots: int, cores: list[int], binding: str | None) -> None:
    assert omp_binding(slot, slots, cores) == binding


def test_a_binding_the_user_set_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cpu_slots.BIND_VARIABLE, raising=False)
    assert usable_cores({}) == sorted(os.sched_getaffinity(0))
    assert usable_cores({cpu_slots.BIND_VARIABLE: "0-3"}) is None
    monkeypatch.setenv(cpu_slots.BIND_VARIABLE, "nobind")
    assert usable_cores({}) is None
