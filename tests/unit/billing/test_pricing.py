"""Pure pricing: amounts, the price in force at a moment, token costs, rounding, currencies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from modelplex.billing.currencies import round_money, validate_currency
from modelplex.billing.errors import InvalidInput
from modelplex.billing.pricing import PriceBook, PriceRecord, parse_amount, plain, token_cost

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def price(
    id_: int, model: str, start: datetime, input_: str = "1", cached: str = "0.5", output: str = "2"
) -> PriceRecord:
    return PriceRecord(
        id=id_,
        model=model,
        currency="USD",
        input_per_1m=Decimal(input_),
        cached_input_per_1m=Decimal(cached),
        output_per_1m=Decimal(output),
        effective_from=start,
        source="test",
        created_at=start,
    )


@pytest.mark.parametrize(("given", "expected"), [("0.15", "0.15"), (3, "3"), (0.1, "0.1"), ("  7.5 ", "7.5")])
def test_amounts_parse_exactly(given: object, expected: str) -> None:
    assert parse_amount(given, param="x") == Decimal(expected)


@pytest.mark.parametrize("given", ["-0.01", "abc", "", "NaN", "-Infinity", True, "1e-11"])
def test_bad_amounts_name_the_field(given: object) -> None:
    with pytest.raises(InvalidInput) as bad:
        parse_amount(given, param="outputPer1M")
    assert bad.value.param == "outputPer1M"


def test_price_in_force_switches_exactly_at_effective_from() -> None:
    book = PriceBook([price(2, "m", T0 + timedelta(days=10)), price(1, "m", T0), price(3, "other", T0)])
    assert book.in_force("m", T0 - timedelta(microseconds=1)) is None
    assert book.in_force("m", T0).id == 1  # type: ignore[union-attr]
    assert book.in_force("m", T0 + timedelta(days=10) - timedelta(microseconds=1)).id == 1  # type: ignore[union-attr]
    assert book.in_force("m", T0 + timedelta(days=10)).id == 2  # type: ignore[union-attr]
    assert book.in_force("unknown", T0) is None
    assert book.next_change(book.by_id[1]) == T0 + timedelta(days=10)
    assert book.next_change(book.by_id[2]) is None


def test_token_cost_bills_cached_tokens_at_the_cached_price() -> None:
    # 600 uncached * 1 + 400 cached * 0.5 + 1000 out * 2, per 1M tokens
    assert token_cost(price(1, "m", T0), 1000, 400, 1000) == Decimal("0.0028")


def test_rounding_is_half_up_to_the_minor_unit() -> None:
    assert round_money(Decimal("0.005"), "USD") == Decimal("0.01")
    assert round_money(Decimal("0.0049999"), "USD") == Decimal("0.00")
    assert round_money(Decimal("12.5"), "JPY") == Decimal("13")
    assert round_money(Decimal("1.0005"), "KWD") == Decimal("1.001")


def test_currencies_are_iso_4217() -> None:
    assert validate_currency(" eur ") == "EUR"
    for bad in ("EURO", "XAU", "ABC", ""):
        with pytest.raises(InvalidInput) as error:
            validate_currency(bad)
        assert error.value.param == "currency"


def test_plain_drops_trailing_zeros_without_exponents() -> None:
    assert [str(plain(Decimal(v))) for v in ("0.1500000000", "100.0000000000", "0E-10")] == [
        "0.15",
        "100",
        "0",
    ]
