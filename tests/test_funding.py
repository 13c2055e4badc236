"""Funding mathematics (rules §8, §11 examples 4 and 5), with hand-derived values."""
from fractions import Fraction

import pytest

from exchange.funding.rate import average_premium, funding_rate_e8, impact_price, payment_units, premium_e8

I, CLAMP, CAP = 10_000, 50_000, 300_000  # 0.01%, 0.05%, 0.3% (×1e8)


@pytest.mark.parametrize(
    "p_avg_e8, expected_e8",
    [(20_000, 10_000), (100_000, 50_000), (-80_000, -30_000), (5_000, 10_000)],  # rules example 4
)
def test_example_4_funding_clamp(p_avg_e8, expected_e8):
    assert funding_rate_e8([p_avg_e8], I, CLAMP, -CAP, CAP) == expected_e8


def test_example_4_weighted_premium():
    # samples 0.01%, 0.02%, 0.03% -> (1×0.01 + 2×0.02 + 3×0.03) / 6 = 0.02333...%
    assert average_premium([1_000, 2_000, 3_000]) == Fraction(14_000, 6)


def test_rate_is_capped_and_floored():
    assert funding_rate_e8([2_000_000], I, CLAMP, -CAP, CAP) == CAP
    assert funding_rate_e8([-2_000_000], I, CLAMP, -CAP, CAP) == -CAP
    assert funding_rate_e8([], I, CLAMP, -CAP, CAP) == I


def test_example_5_payment_long_pays_short_receives():
    # long 2 BTC (lot 0.001 -> 2000 lots), mark 30,000 (tick 0.1 -> 300,000 ticks), K = 0.1×0.001×1e8 = 10_000
    assert payment_units(2000, 300_000, 10_000, 10_000) == 600_000_000  # 6.00 USDT
    assert payment_units(-2000, 300_000, 10_000, 10_000) == -600_000_000


def test_payment_rounding_favours_the_venue():
    # 1 lot × 1 tick × K 1 × 1.5e-8... amount = 150_000_000 / 1e8 = 1.5 units
    assert payment_units(1, 1, 1, 150_000_000) == 2  # the payer pays 2
    assert payment_units(-1, 1, 1, 150_000_000) == -1  # the receiver gets 1


def test_impact_price_walks_levels_fractionally():
    # K = 1; levels 100 × 10 (notional 1000) then 110 × 10; impact notional 1550 -> takes 10 lots at 100 and
    # 550/110 = 5 lots at 110: average = 1550 / 15
    assert impact_price([(100, 10, 1), (110, 10, 1)], 1550, 1) == Fraction(1550, 15)
    assert impact_price([(100, 10, 1)], 1000, 1) == 100
    assert impact_price([(100, 10, 1)], 1001, 1) is None
    with pytest.raises(ValueError):
        impact_price([], 0, 1)


def test_premium_from_impact_prices():
    # index 100; impact bid 101 -> +1% ; impact ask 99 -> -1%; both inside the spread around the index -> 0
    assert premium_e8(Fraction(101), Fraction(102), 100) == 1_000_000
    assert premium_e8(Fraction(98), Fraction(99), 100) == -1_000_000
    assert premium_e8(Fraction(99), Fraction(101), 100) == 0
    assert premium_e8(None, None, 100) == 0
    assert premium_e8(Fraction(1, 3) + 100, None, 100) == 333_333  # truncated toward zero
    with pytest.raises(ValueError):
        premium_e8(None, None, 0)
