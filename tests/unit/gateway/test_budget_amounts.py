"""Budget arithmetic: worst cases, prices in nano-units, what fits; the in-process keeper."""

import asyncio
from decimal import Decimal

import pytest

from modelplex.billing.contracts import PlanLimits, TokenPrice
from modelplex.gateway.budgets.amounts import (
    Amount,
    Budget,
    WorstCase,
    budget_of,
    reservation,
    shortfall,
    used,
    worst_case,
)
from modelplex.gateway.budgets.keeper import BudgetExceeded
from modelplex.gateway.budgets.memory import MemoryBudgets

PRICE = TokenPrice(
    currency="USD", input_per_1m=Decimal(2), cached_input_per_1m=Decimal("0.5"), output_per_1m=Decimal(8)
)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((100, 1, 20, 1, 8192, True), WorstCase(100, 20)),  # prompt bound + max_tokens
        ((100, 1, None, 1, 8192, True), WorstCase(100, 8192)),  # no max_tokens: the context length
        ((100, 1, 20, 3, 8192, True), WorstCase(100, 60)),  # n=3: three sequences
        ((100, 2, 20, 3, 8192, True), WorstCase(100, 120)),  # two prompts, n=3 each
        ((50_000, 1, 20, 1, 8192, True), WorstCase(8192, 20)),  # longer prompts are refused by the engine
        ((100, 1, 99_999, 1, 8192, True), WorstCase(100, 8192)),
        ((100, 1, None, 1, 8192, False), WorstCase(100, 0)),  # embeddings generate nothing
    ],
)
def test_worst_case(args: tuple[int, int, int | None, int, int, bool], expected: WorstCase) -> None:
    assert worst_case(*args) == expected


def test_reservation_prices_the_prompt_uncached_and_rounds_up() -> None:
    # 100 * 2/1M + 20 * 8/1M = 0.00036 USD
    assert reservation(WorstCase(100, 20), PRICE, "USD") == Amount(120, 360_000)
    cheap = PRICE.model_copy(update={"input_per_1m": Decimal("0.0001")})
    assert reservation(WorstCase(1, 0), cheap, "USD") == Amount(1, 1)  # 1e-10 rounds up to a nano-unit
    assert reservation(WorstCase(100, 20), None, "USD") == Amount(120, 0)
    assert reservation(WorstCase(100, 20), PRICE, "EUR") == Amount(120, 0)  # not this plan's currency


def test_used_prices_like_the_ledger() -> None:
    # 60 uncached * 2 + 40 cached * 0.5 + 10 * 8 = 220 per 1M
    assert used(100, 40, 10, PRICE, "USD") == Amount(110, 220_000)
    assert used(100, 40, 10, None, "USD") == Amount(110, 0)


def test_shortfall_names_the_budget_that_breaks() -> None:
    budget = budget_of(PlanLimits(monthly_token_budget=100, monthly_spend_budget=Decimal("0.001")))
    assert budget == Budget(100, 1_000_000)
    assert shortfall(budget, Amount(50, 0), Amount(50, 1_000_000)) is None
    assert shortfall(budget, Amount(50, 0), Amount(51, 0)) == "token"
    assert shortfall(budget, Amount(0, 1), Amount(1, 1_000_000)) == "spend"
    assert shortfall(Budget(None, None), Amount(10**9, 10**15), Amount(1, 1)) is None


def test_memory_budgets_reserve_settle_and_follow_the_ledger() -> None:
    asyncio.run(_memory_budgets())


async def _memory_budgets() -> None:
    keeper = MemoryBudgets()
    budget = Budget(100, None)
    first = await keeper.reserve("t", "a", "2026-12", budget, Amount(0, 0), Amount(60, 0))
    with pytest.raises(BudgetExceeded) as caught:
        await keeper.reserve("t", "b", "2026-12", budget, Amount(0, 0), Amount(60, 0))
    refusal = caught.value.refusal
    assert (refusal.budget, refusal.remaining, refusal.reserved) == ("token", Amount(40, 0), Amount(60, 0))
    await keeper.settle(first, Amount(10, 0))  # it used far less than its worst case
    second = await keeper.reserve("t", "b", "2026-12", budget, Amount(0, 0), Amount(60, 0))
    await keeper.settle(second, Amount(10, 0))
    await keeper.settle(second, Amount(10, 0))  # settling twice counts once
    # The ledger reads higher (usage this keeper never saw): it wins; lower readings do not lower it.
    raised = await keeper.reserve("t", "c", "2026-12", budget, Amount(50, 0), Amount(50, 0))
    await keeper.settle(raised, Amount(0, 0))
    with pytest.raises(BudgetExceeded):
        await keeper.reserve("t", "d", "2026-12", budget, Amount(0, 0), Amount(51, 0))
    # A new month starts from its own ledger reading.
    await keeper.reserve("t", "e", "2027-01", budget, Amount(0, 0), Amount(100, 0))
