"""The ADL queue's exact scores without Fractions (``queue._rank`` of ``ranking.score_ratio``): they order as the
Fractions do, ties included, and the ratio functions are the score functions' unnormalised twins."""
from fractions import Fraction

from hypothesis import given, strategies as st

from exchange.liquidation.adl import queue as adlqueue, score as adl

BIG = st.integers(-(10**40), 10**40)
RATIOS = st.tuples(st.integers(-(10**30), 10**30), st.integers(1, 10**30))


@given(st.lists(st.tuples(RATIOS, st.integers(0, 3)), max_size=30))
def test_rank_orders_as_the_fractions_ties_included(scored):
    """Sorting (rank, key) descending as the queue does gives the oracle's (-Fraction, key) order; ratios
    scaled by a common factor (equal scores, different integers) must tie and fall back to the key."""
    scored = scored + [((n * 7, d * 7), key + 1) for (n, d), key in scored[:5]]
    by_rank = sorted(range(len(scored)), key=lambda i: scored[i][1])
    by_rank.sort(key=lambda i: adlqueue._rank(scored[i][0]), reverse=True)
    oracle = sorted(range(len(scored)), key=lambda i: (-Fraction(*scored[i][0]), scored[i][1]))
    assert [scored[i] for i in by_rank] == [scored[i] for i in oracle]


@given(RATIOS, st.floats(allow_nan=False, allow_infinity=False))
def test_ratio_compares_with_a_fraction_and_floats_as_the_fraction(ratio, bound):
    value, exact = adlqueue._rank(ratio)
    assert value == float(Fraction(*ratio))
    floor = Fraction(bound)
    assert (exact < floor) == (Fraction(*ratio) < floor)
    assert (exact > floor) == (Fraction(*ratio) > floor)
    assert (exact == floor) == (Fraction(*ratio) == floor)
    assert (exact.numerator > 0) == (Fraction(*ratio) > 0)


def test_rank_beyond_the_float_range_keeps_the_sign():
    assert adlqueue._rank((10**400, 1))[0] == float("inf")
    assert adlqueue._rank((-(10**400), 3))[0] == float("-inf")


@given(BIG, BIG, BIG, BIG)
def test_ratios_are_the_scores(upnl, wallet, mm, balance):
    assert Fraction(*adl.binance_ratio(upnl, wallet, abs(mm))) == adl.binance_score(upnl, wallet, abs(mm))
    entry, notional = abs(wallet) + 1, abs(mm) + 1
    assert Fraction(*adl.bybit_ratio(upnl, entry, notional, balance)) == adl.bybit_score(upnl, entry, notional, balance)
    assert adl.binance_ratio(upnl, wallet, abs(mm))[1] > 0 and adl.bybit_ratio(upnl, entry, notional, balance)[1] > 0
