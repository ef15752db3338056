"""The budget-used gauge behind the "budget at 90 %" alert: per tenant, or the highest share under '*'."""

from decimal import Decimal

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from modelplex.billing.contracts import BudgetStatus, PlanLimits
from modelplex.gateway.budgets.amounts import used_shares
from modelplex.gateway.metrics import BudgetUse
from mpxtest.upstream import World

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def _status(tokens: int, spend: str = "0") -> BudgetStatus:
    return BudgetStatus(
        tokens_used=tokens, spend_used=Decimal(spend), tokens_remaining=0, spend_remaining=None
    )


def test_used_shares_are_per_budget_and_only_for_budgets_the_plan_has() -> None:
    both = PlanLimits(monthly_token_budget=1000, monthly_spend_budget=Decimal(20))
    assert used_shares(both, _status(900, "5")) == {"token": 0.9, "spend": 0.25}
    assert used_shares(PlanLimits(monthly_token_budget=1000), _status(1200)) == {"token": 1.2}
    assert used_shares(PlanLimits(), _status(5)) == {}
    assert used_shares(PlanLimits(monthly_token_budget=0), _status(0)) == {"token": 1.0}


def _two_tenant_world(world: World) -> None:
    world.replica()
    for name, used in (("alpha", 9000), ("beta", 1000)):
        world.tenant(name, key=f"mpx-test-{name}", monthly_token_budget=10_000)
        world.authority.set_used(name, used)


def _ask_as_each(url: str) -> str:
    for name in ("alpha", "beta"):
        headers = {"authorization": f"Bearer mpx-test-{name}"}
        assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
    return httpx.get(url + "/metrics").text


def test_with_tenant_labels_each_tenant_has_its_share(world: World) -> None:
    _two_tenant_world(world)
    text = _ask_as_each(world.gateway(metrics_tenant_labels=True))
    assert 'modelplex_gateway_budget_used_ratio{budget="token",tenant="alpha"} 0.9' in text
    assert 'modelplex_gateway_budget_used_ratio{budget="token",tenant="beta"} 0.1' in text


def test_without_tenant_labels_only_the_highest_share_shows_and_no_tenant_id(world: World) -> None:
    _two_tenant_world(world)
    text = _ask_as_each(world.gateway())
    shown = [line for line in text.splitlines() if line.startswith("modelplex_gateway_budget_used_ratio")]
    assert shown == ['modelplex_gateway_budget_used_ratio{budget="token",tenant="*"} 0.9']
    assert "alpha" not in text
    assert "beta" not in text


@pytest.mark.parametrize("tenant_ids", [True, False])
def test_a_new_month_forgets_last_months_shares(tenant_ids: bool) -> None:
    registry = CollectorRegistry()
    use = BudgetUse(Gauge("used", "", ["tenant", "budget"], registry=registry), tenant_ids)
    use.observe("alpha", "2026-11", {"token": 0.95})
    use.observe("beta", "2026-12", {"token": 0.2})
    text = generate_latest(registry).decode()
    assert "0.95" not in text
    assert 'used{budget="token",tenant="' + ("beta" if tenant_ids else "*") + '"} 0.2' in text
