from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.core.amounts import MAX_AMOUNT, AmountError, format_uath, parse_ath


@pytest.mark.parametrize(
    "text, micro",
    [
        ("1", 1_000_000),
        ("0.1", 100_000),
        ("12.5", 12_500_000),
        ("1,000", 1_000_000_000),
        ("0.000001", 1),
        (" 7 ATH ", 7_000_000),
        (".5", 500_000),
        ("1.0000000", 1_000_000),
    ],
)
def test_parse_exact(text, micro):
    assert parse_ath(text) == micro


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "Enter an amount"),
        ("-1", "more than zero"),
        ("0", "more than zero"),
        ("abc", "Enter a number"),
        ("0.0000001", "six decimals"),
        ("NaN", "Enter a number"),
        ("Infinity", "Enter a number"),
        ("9" * 30, "larger than the whole supply"),
        ("1" * 41, "too long"),
    ],
)
def test_parse_refuses_with_a_clear_message(text, message):
    with pytest.raises(AmountError, match=message):
        parse_ath(text)


def test_format():
    assert format_uath(1) == "0.000001 ATH"
    assert format_uath(42_000_000_000 * 10**6) == "42,000,000,000 ATH"
    assert format_uath(-1_500_000) == "-1.5 ATH"
    assert format_uath(1_999_999, places=2) == "1.99 ATH"  # rounds down, never up


@given(st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_format_then_parse_round_trips(micro):
    assert parse_ath(format_uath(micro, unit=False)) == micro


@given(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1e12"), places=6))
def test_parse_matches_decimal_arithmetic(value):
    assert parse_ath(format(value, "f")) == int(value * 1_000_000)
