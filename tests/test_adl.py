"""ADL ranking (rules §7, §10, §11 example 10), hand-derived."""
from fractions import Fraction

import pytest

from exchange.liquidation.adl.score import binance_score, bitmex_score, bybit_score, quantile_lights, rank, seeded_order


def test_example_10_bitmex_scores_and_ranking():
    # long entry 50,000, mark 55,000, bankruptcy 45,000: leverage 55/10 = 5.5, PnL 10% -> 0.55
    first = bitmex_score(1, Fraction(50_000), 55_000, Fraction(45_000))
    assert first == Fraction(55, 100)
    # long entry 52,000 at 20x -> bankruptcy 52,000 × 0.95 = 49,400; mark 55,000
    # PnL 3,000/52,000; leverage 55,000/5,600 -> 0.56662...
    second = bitmex_score(1, Fraction(52_000), 55_000, Fraction(49_400))
    assert second == Fraction(3_000, 52_000) * Fraction(55_000, 5_600)
    assert abs(float(second) - 0.5666) < 1e-4
    assert rank({1: first, 2: second}) == [2, 1]


def test_bitmex_loss_divides_by_leverage_and_short_side():
    # short entry 100, mark 110 (a 10% loss), bankruptcy 120: leverage 110/10 = 11 -> -0.1 / 11
    assert bitmex_score(-1, Fraction(100), 110, Fraction(120)) == Fraction(-1, 110)


def test_binance_default_score():
    # upnl 50, wallet 100 -> pnl 0.5; MM 15, balance 150 -> ratio 0.1; score 0.05
    assert binance_score(50, 100, 15) == Fraction(1, 20)
    assert binance_score(-50, 100, 15) == 0  # a loser is never ranked above a winner
    assert binance_score(50, -60, 15) == 0  # non-positive balance


def test_bybit_score():
    # upnl 10 on an entry notional of 100 (10%), value 110 on a balance of 22 -> leverage 5 -> 0.5
    assert bybit_score(10, 100, 110, 22) == Fraction(1, 2)
    assert bybit_score(-10, 100, 90, 45) == Fraction(-1, 20)
    assert bybit_score(10, 100, 110, 0) == 0


def test_ties_break_by_account_id():
    assert rank({9: Fraction(1), 3: Fraction(1), 5: Fraction(2)}) == [5, 3, 9]


@pytest.mark.parametrize("position, lights", [(0, 5), (1, 5), (2, 4), (5, 3), (9, 1)])
def test_quantile_lights_for_ten_candidates(position, lights):
    assert quantile_lights(position, 10) == lights


def test_quantile_bounds():
    with pytest.raises(ValueError):
        quantile_lights(3, 3)


def test_seeded_order_is_a_rotation_fixed_by_the_seed():
    ids = [4, 1, 3, 2]
    order = seeded_order(ids, seed=7)
    assert sorted(order) == [1, 2, 3, 4]
    start = order.index(1)
    assert order[start:] + order[:start] == [1, 2, 3, 4]  # a rotation of the ascending ids
    assert seeded_order(ids, seed=7) == order
    assert seeded_order([], seed=1) == []
