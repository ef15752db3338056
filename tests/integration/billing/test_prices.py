"""Price history on both databases: append-only, validated, never retroactive; deployment pricing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from modelplex.billing import price_history
from modelplex.billing.errors import Conflict, InvalidInput, NotFound
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.ledger import Ledger
from modelplex.billing.price_history import PriceTerms
from modelplex.billing.tables import UsageEventRow
from mpxtest.ledger import usage_event

pytestmark = pytest.mark.anyio
MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def terms(**amounts: object) -> PriceTerms:
    return PriceTerms.model_validate({"inputPer1M": "1", "outputPer1M": "2", **amounts})


async def test_a_price_change_adds_a_row_and_keeps_the_old_one(ledger: Ledger) -> None:
    first = await price_history.set_price(ledger, "m1", terms(), MARCH)
    await price_history.set_price(ledger, "m1", terms(inputPer1M="1.5"), MARCH + timedelta(days=10))
    history = await price_history.list_prices(ledger, "m1")
    assert [(p.input_per_1m, p.effective_from) for p in history] == [
        (Decimal("1"), MARCH),
        (Decimal("1.5"), MARCH + timedelta(days=10)),
    ]
    assert history[0] == first
    assert history[0].cached_input_per_1m == Decimal("1")  # defaults to the input price


async def test_usage_is_priced_at_the_price_in_force_when_it_started(ledger: Ledger) -> None:
    old = await price_history.set_price(ledger, "m1", terms(), MARCH)
    new = await price_history.set_price(ledger, "m1", terms(inputPer1M="3"), MARCH + timedelta(days=10))
    await LedgerSink(ledger).ingest(
        [
            usage_event("before", at=MARCH + timedelta(days=9, hours=23, minutes=59)),
            usage_event("after", at=MARCH + timedelta(days=10)),
            usage_event("unpriced", at=MARCH - timedelta(days=1)),
        ]
    )
    async with ledger.sessions() as session:
        result = await session.execute(select(UsageEventRow.request_id, UsageEventRow.price_id))
        rows = {request_id: price_id for request_id, price_id in result.all()}
    assert rows == {"before": old.id, "after": new.id, "unpriced": None}


async def test_prices_cannot_take_effect_before_recorded_usage(ledger: Ledger) -> None:
    await price_history.set_price(ledger, "m1", terms(), MARCH)
    await LedgerSink(ledger).ingest([usage_event("r1", at=MARCH + timedelta(days=5))])
    with pytest.raises(Conflict) as retroactive:
        await price_history.set_price(ledger, "m1", terms(inputPer1M="9"), MARCH + timedelta(days=4))
    assert retroactive.value.param == "effectiveFrom"
    await price_history.set_price(ledger, "m1", terms(inputPer1M="9"), MARCH + timedelta(days=6))
    await price_history.set_price(ledger, "m2", terms(), MARCH)  # other models are not affected
    with pytest.raises(Conflict) as duplicate:
        await price_history.set_price(ledger, "m2", terms(inputPer1M="5"), MARCH)
    assert duplicate.value.param == "effectiveFrom"


@pytest.mark.parametrize(
    ("amounts", "param"),
    [
        ({"inputPer1M": "-1"}, "inputPer1M"),
        ({"outputPer1M": "abc"}, "outputPer1M"),
        ({"cachedInputPer1M": "-0.01"}, "cachedInputPer1M"),
        ({"inputPer1M": "NaN"}, "inputPer1M"),
        ({"outputPer1M": "Infinity"}, "outputPer1M"),
        ({"inputPer1M": "0.00000000001"}, "inputPer1M"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "dollars"}, "currency"),
    ],
)
async def test_bad_prices_are_rejected_naming_the_field(
    ledger: Ledger, amounts: dict[str, str], param: str
) -> None:
    with pytest.raises(InvalidInput) as bad:
        await price_history.set_price(ledger, "m1", terms(**amounts), MARCH)
    assert bad.value.param == param
    with pytest.raises(NotFound):
        await price_history.list_prices(ledger, "m1")  # nothing was written


async def test_deployment_pricing_adds_a_row_only_when_it_changes(ledger: Ledger) -> None:
    source = "modeldeployment:default/m1"
    declared = PriceTerms.model_validate({"inputPer1M": "0.15", "outputPer1M": "0.60", "currency": "usd"})
    first = await price_history.apply_deployment_pricing(ledger, "m1", declared, source)
    assert first is not None
    assert first.source == source
    assert first.currency == "USD"
    assert await price_history.apply_deployment_pricing(ledger, "m1", declared, source) is None
    same_value = PriceTerms.model_validate(
        {"inputPer1M": 0.150, "outputPer1M": "0.6", "cachedInputPer1M": "0.15"}
    )
    assert await price_history.apply_deployment_pricing(ledger, "m1", same_value, source) is None
    cheaper = PriceTerms.model_validate({"inputPer1M": "0.10", "outputPer1M": "0.60"})
    assert await price_history.apply_deployment_pricing(ledger, "m1", cheaper, source) is not None
    assert [p.input_per_1m for p in await price_history.list_prices(ledger, "m1")] == [
        Decimal("0.15"),
        Decimal("0.1"),
    ]
